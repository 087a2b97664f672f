"""Alert integrations: importing this package registers every transport."""

from apps.alerts.transports import slack, webhook
from apps.alerts.transports.base import (
    TRANSPORTS,
    AlertMessage,
    ExampleCall,
    Transport,
    TransportError,
    get_transport,
)

__all__ = [
    "TRANSPORTS",
    "AlertMessage",
    "ExampleCall",
    "Transport",
    "TransportError",
    "get_transport",
    "slack",
    "webhook",
]
