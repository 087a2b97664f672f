"""Forms: parse and validate UI input; views hand the cleaned data to selectors and services."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.models import Role, Scope
from apps.alerts.models import Metric, Operator, RuleKind
from apps.dashboard.selectors.review import REVIEW_MODES, REVIEW_SIGNALS
from apps.traces.metrics import RANGES
from apps.traces.models import CallKind

RANGE_CHOICES = [(k, k) for k in RANGES]


class OverviewFilterForm(forms.Form):
    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False)
    model = forms.CharField(required=False, max_length=255)
    release = forms.CharField(required=False, max_length=128)
    environment = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=128)


CALL_SORT_CHOICES = [
    ("", "newest first"),
    ("-time", "newest first"),
    ("time", "oldest first"),
    ("-latency", "slowest first"),
    ("latency", "fastest first"),
    ("-cost", "costliest first"),
    ("cost", "cheapest first"),
    ("-tokens", "most tokens first"),
    ("tokens", "fewest tokens first"),
]


class CallFilterForm(forms.Form):
    range = forms.ChoiceField(choices=[("", "all"), *RANGE_CHOICES], required=False)
    q = forms.CharField(required=False, max_length=500, label="Text search")
    semantic = forms.CharField(required=False, max_length=1000, label="Semantic search")
    model = forms.CharField(required=False, max_length=255)
    release = forms.CharField(required=False, max_length=128)
    environment = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=128)
    status = forms.ChoiceField(
        choices=[("", "any"), ("ok", "ok"), ("error", "error")], required=False
    )
    flagged = forms.ChoiceField(
        choices=[("", "any"), ("1", "flagged"), ("0", "not flagged")], required=False
    )
    trace = forms.CharField(required=False, max_length=64)
    # A new-intent group of a drift check: "<check id>:<group index>".
    drift_group = forms.RegexField(regex=r"^\d{1,12}:\d{1,3}$", required=False, max_length=20)
    # "metrics": the calls the overview's numbers count (LLM and embedding calls, no spans).
    kind = forms.ChoiceField(
        choices=[("", "Any"), ("metrics", "LLM calls"), *CallKind.choices], required=False
    )
    # An explicit window (an incident's breached window, a chart point): ISO datetimes.
    start = forms.DateTimeField(required=False)
    end = forms.DateTimeField(required=False)
    cursor = forms.CharField(required=False, max_length=300)
    sort = forms.ChoiceField(choices=CALL_SORT_CHOICES, required=False)
    latency_min = forms.FloatField(required=False, min_value=0, label="Latency from (ms)")
    latency_max = forms.FloatField(required=False, min_value=0, label="Latency to (ms)")
    cost_min = forms.FloatField(required=False, min_value=0, label="Cost from ($)")
    cost_max = forms.FloatField(required=False, min_value=0, label="Cost to ($)")
    tokens_min = forms.IntegerField(required=False, min_value=0, label="Tokens from")
    tokens_max = forms.IntegerField(required=False, min_value=0, label="Tokens to")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for stem in ("latency", "cost", "tokens"):
            low, high = data.get(f"{stem}_min"), data.get(f"{stem}_max")
            if low is not None and high is not None and low > high:
                # The pair is not applied at all: half of an upside-down range misleads.
                self.add_error(f"{stem}_max", "must be at least the lower bound")
                data.pop(f"{stem}_min", None)
        return data


# Query parameters of a calls view worth keeping (a saved view, a link back from a call).
CALL_VIEW_PARAMS = tuple(name for name in CallFilterForm.base_fields if name not in ("cursor",))


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=120)
    query = forms.CharField(max_length=2000, required=False)


class ReviewFilterForm(forms.Form):
    mode = forms.ChoiceField(choices=[(m, m) for m in REVIEW_MODES], required=False)
    signal = forms.ChoiceField(
        choices=[("", "any"), *[(s, s) for s in REVIEW_SIGNALS]], required=False
    )
    intent = forms.CharField(required=False, max_length=200)
    batch = forms.CharField(required=False, max_length=200)


class ReviewLabelForm(forms.Form):
    call_id = forms.UUIDField()
    score = forms.FloatField(min_value=0.0, max_value=1.0)
    labels = forms.CharField(
        required=False, max_length=1000, help_text="comma-separated, e.g. hallucination, off-topic"
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)

    def clean_labels(self) -> list[str]:
        raw: str = self.cleaned_data.get("labels") or ""
        labels = [part.strip().lower()[:64] for part in raw.split(",") if part.strip()]
        if len(labels) > 10:
            raise forms.ValidationError("at most 10 labels")
        return list(dict.fromkeys(labels))


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=120, initial="sdk")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, initial=[Scope.INGEST], widget=forms.CheckboxSelectMultiple
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="username or e-mail of an existing user")
    role = forms.ChoiceField(choices=Role.choices)


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class InviteAcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False, max_length=254)
    password = forms.CharField(widget=forms.PasswordInput, max_length=128)
    password2 = forms.CharField(widget=forms.PasswordInput, max_length=128, label="Again")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", "the two passwords differ")
        return data


class RetentionForm(forms.Form):
    retention_days = forms.IntegerField(min_value=1, max_value=3650)


class KeyFilterForm(forms.Form):
    key_name = forms.CharField(required=False, max_length=120)
    key_scope = forms.ChoiceField(choices=[("", "any"), *Scope.choices], required=False)
    key_status = forms.ChoiceField(
        choices=[("", "any"), ("active", "active"), ("revoked", "revoked")], required=False
    )


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, required=False)


class PriceOverrideForm(forms.Form):
    model_pattern = forms.CharField(max_length=255, help_text='a glob, e.g. "gpt-4o*"')
    input_per_mtok = forms.FloatField(min_value=0, label="Input $/Mtok")
    output_per_mtok = forms.FloatField(min_value=0, label="Output $/Mtok")
    cached_input_per_mtok = forms.FloatField(
        min_value=0, required=False, label="Cached input $/Mtok"
    )
    reasoning_per_mtok = forms.FloatField(min_value=0, required=False, label="Reasoning $/Mtok")


class IntentRenameForm(forms.Form):
    intent_id = forms.IntegerField(min_value=1)
    name = forms.CharField(max_length=200)


class IntentGroupForm(forms.Form):
    check_id = forms.IntegerField(min_value=1)
    index = forms.IntegerField(min_value=0, max_value=100)


class IntentGroupNameForm(IntentGroupForm):
    name = forms.CharField(max_length=200, required=False)


class BaselineFitForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=30, required=False, initial=7)
    release = forms.CharField(max_length=128, required=False)


def cleaned(form: forms.Form) -> dict[str, Any]:
    """Cleaned data of a bound form; invalid fields fall back to empty (filters are lenient)."""
    form.is_valid()
    data = dict(form.cleaned_data)
    for name in form.fields:
        data.setdefault(name, "")
    return data


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("slack", "Slack incoming webhook"), ("webhook", "JSON webhook (HMAC-signed)")]
    )
    name = forms.CharField(max_length=200)
    url = forms.URLField(max_length=2000, assume_scheme="https")


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=RuleKind.choices, initial=RuleKind.METRIC)
    metric = forms.ChoiceField(choices=[("", "-"), *Metric.choices], required=False)
    operator = forms.ChoiceField(choices=Operator.choices, initial=Operator.GT)
    threshold = forms.FloatField(required=False)
    critical_threshold = forms.FloatField(required=False)
    window = forms.CharField(max_length=16, initial="15m", help_text="e.g. 5m, 1h, 1d")
    channels = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=[])

    def __init__(
        self, *args: Any, channel_choices: list[tuple[int, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = channel_choices or []  # type: ignore[attr-defined]

    def rule_data(self) -> dict[str, Any]:
        """The cleaned values as ``rule_create`` keywords (blank optional ones left out)."""
        data = dict(self.cleaned_data)
        for name in ("metric", "threshold", "critical_threshold"):
            if data.get(name) in ("", None):
                data.pop(name, None)
        return data
