"""Writes of the alerts app, one module per concern.

* ``channels``: channel CRUD and the URL policy, test sends;
* ``rules``: rule CRUD and validation;
* ``evaluation``: the incident state machine, the claim of due rules, the janitor;
* ``incidents``: what people do to incidents (acknowledge, resolve, mute);
* ``outbox``: the incident event and its notification rows, the wake-ups on commit;
* ``delivery``: claiming and sending notifications, retries, disabling broken channels.
"""
