"""Pydantic AI's instrumentation (``InstrumentationSettings``, ``Agent.instrument_all()``):
GenAI ``chat`` / ``execute_tool`` / ``invoke_agent`` spans, plus attributes of its own.

https://ai.pydantic.dev/logfire/ (the data format ``version``s 2 to 6).
"""

from __future__ import annotations

# Tool spans before version 5 name their arguments and result so; later ones use gen_ai.tool.*.
TOOL_ARGUMENTS = "tool_arguments"
TOOL_RESULT = "tool_response"
# The agent run's whole conversation and final output, and the model request's parameters (the
# tool definitions and output schema): content, or too big for metadata.
CONTENT_KEYS = frozenset(
    {
        "pydantic_ai.all_messages",
        "final_result",
        "model_request_parameters",
        TOOL_ARGUMENTS,
        TOOL_RESULT,
    }
)
