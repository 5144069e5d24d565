"""codexapi: a synchronous, plugin-based client for the model APIs the Codex CLI speaks.

    from codexapi import Client, Provider, ResponsesRequest, Message
    with Client(Provider(base_url="http://127.0.0.1:8000/v1")) as client:
        print(client.stream(ResponsesRequest(model="m", input="Hello")).collect().text)
"""

from __future__ import annotations

import logging
from typing import Any

from . import events
from ._version import __version__
from .client import (
    ChatClient,
    Client,
    CompactClient,
    ModelInfo,
    ModelList,
    ModelsClient,
    ResponsesClient,
)
from .config import load_providers
from .errors import (
    ApiError,
    ApiRateLimitError,
    AuthError,
    CodexApiError,
    ConfigError,
    ConnectTimeout,
    ContextWindowExceeded,
    CyberPolicy,
    IdleTimeout,
    InvalidRequest,
    ModelUnavailable,
    PluginError,
    QuotaExceeded,
    RateLimitError,
    ReadTimeout,
    ServerOverloaded,
    StreamError,
    TransportError,
    UnsupportedEndpointError,
    UsageLimitReached,
    UsageNotIncluded,
)
from .events import (
    Completed,
    Created,
    Event,
    Item,
    ModelsEtag,
    ModelVerifications,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RateLimits,
    RateLimitSnapshot,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryDone,
    ReasoningSummaryPartAdded,
    SafetyBuffering,
    ServerModel,
    ServerReasoningIncluded,
    TokenUsage,
    ToolCallInputDelta,
    TurnModerationMetadata,
)
from .hookspecs import hookimpl
from .models import (
    CompactionTrigger,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Provider,
    Reasoning,
    ReasoningConfig,
    ResponsesRequest,
    RetryPolicy,
    TextControls,
    WireApi,
)
from .session import SessionContext, TurnState
from .sse import SseMessage
from .stream import ResponseStream, StreamResult
from .transport import HttpRequest, Transport, Urllib3Transport

_AUTH_NAMES = ("AzureKeyAuth", "BearerAuth", "CodexAuthFile", "NoAuth")


def __getattr__(name: str) -> Any:
    # The auth classes live in their plugin; loaded on first use so that first-party plugins
    # can import ``codexapi.hookimpl`` exactly like third-party ones, without an import cycle.
    if name in _AUTH_NAMES:
        from codexapi_plugins import auth

        return getattr(auth, name)
    raise AttributeError(f"module 'codexapi' has no attribute {name!r}")


# A library logs, the application decides where it goes.
logging.getLogger("codexapi").addHandler(logging.NullHandler())

__all__ = [
    "ApiError",
    "ApiRateLimitError",
    "AuthError",
    "AzureKeyAuth",
    "BearerAuth",
    "ChatClient",
    "Client",
    "CodexApiError",
    "CodexAuthFile",
    "CompactClient",
    "CompactionTrigger",
    "Completed",
    "ConfigError",
    "ConnectTimeout",
    "ContextWindowExceeded",
    "Created",
    "CyberPolicy",
    "Event",
    "FunctionCall",
    "FunctionCallOutput",
    "HttpRequest",
    "IdleTimeout",
    "InvalidRequest",
    "Item",
    "Message",
    "ModelInfo",
    "ModelList",
    "ModelUnavailable",
    "ModelVerifications",
    "ModelsClient",
    "ModelsEtag",
    "NoAuth",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextDelta",
    "PluginError",
    "Provider",
    "QuotaExceeded",
    "RateLimitError",
    "RateLimitSnapshot",
    "RateLimits",
    "ReadTimeout",
    "Reasoning",
    "ReasoningConfig",
    "ReasoningContentDelta",
    "ReasoningSummaryDelta",
    "ReasoningSummaryDone",
    "ReasoningSummaryPartAdded",
    "ResponseStream",
    "ResponsesClient",
    "ResponsesRequest",
    "RetryPolicy",
    "SafetyBuffering",
    "ServerModel",
    "ServerOverloaded",
    "ServerReasoningIncluded",
    "SessionContext",
    "SseMessage",
    "StreamError",
    "StreamResult",
    "TextControls",
    "TokenUsage",
    "ToolCallInputDelta",
    "Transport",
    "TransportError",
    "TurnModerationMetadata",
    "TurnState",
    "UnsupportedEndpointError",
    "Urllib3Transport",
    "UsageLimitReached",
    "UsageNotIncluded",
    "WireApi",
    "__version__",
    "events",
    "hookimpl",
    "load_providers",
]
