"""codexapi: a synchronous, plugin-based client for the model APIs the Codex CLI speaks.

    from codexapi import Client, Provider, ResponsesRequest, Message
    with Client(Provider(base_url="http://127.0.0.1:8000/v1")) as client:
        print(client.stream(ResponsesRequest(model="m", input="Hello")).collect().text)
"""

from __future__ import annotations

import logging

from . import events, items
from ._version import __version__
from .auth import AzureKeyAuth, BearerAuth, CodexAuthFile, NoAuth
from .client import (
    ChatClient,
    Client,
    CompactClient,
    ModelInfo,
    ModelList,
    ModelsClient,
    ResponsesClient,
)
from .errors import (
    ApiError,
    AuthError,
    CodexApiError,
    ConfigError,
    ConnectTimeout,
    ContextWindowExceeded,
    IdleTimeout,
    InvalidRequest,
    OutputParseError,
    PluginError,
    QuotaExceeded,
    RateLimitError,
    ReadTimeout,
    ServerOverloaded,
    StreamError,
    ToolArgumentsError,
    TransportError,
    UnsupportedEndpointError,
    UsageNotIncluded,
)
from .events import (
    Completed,
    Created,
    Event,
    Item,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RateLimits,
    RateLimitSnapshot,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TokenUsage,
)
from .hookspecs import hookimpl
from .items import (
    Compaction,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    ImageGenerationCall,
    LocalShellCall,
    Message,
    Reasoning,
    WebSearchCall,
)
from .models import (
    Provider,
    ReasoningConfig,
    ResponsesRequest,
    RetryPolicy,
    TextControls,
    WireApi,
    load_providers,
)
from .sse import SseMessage
from .stream import ResponseStream, StreamResult
from .structured import json_schema
from .transport import HttpRequest, Transport, Urllib3Transport

# A library logs, the application decides where it goes.
logging.getLogger("codexapi").addHandler(logging.NullHandler())

__all__ = [
    "ApiError",
    "AuthError",
    "AzureKeyAuth",
    "BearerAuth",
    "ChatClient",
    "Client",
    "CodexApiError",
    "CodexAuthFile",
    "CompactClient",
    "Compaction",
    "Completed",
    "ConfigError",
    "ConnectTimeout",
    "ContextWindowExceeded",
    "Created",
    "CustomToolCall",
    "CustomToolCallOutput",
    "Event",
    "FunctionCall",
    "FunctionCallOutput",
    "HttpRequest",
    "IdleTimeout",
    "ImageGenerationCall",
    "InvalidRequest",
    "Item",
    "LocalShellCall",
    "Message",
    "ModelInfo",
    "ModelList",
    "ModelsClient",
    "NoAuth",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputParseError",
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
    "ReasoningSummaryPartAdded",
    "ResponseStream",
    "ResponsesClient",
    "ResponsesRequest",
    "RetryPolicy",
    "ServerOverloaded",
    "SseMessage",
    "StreamError",
    "StreamResult",
    "TextControls",
    "TokenUsage",
    "ToolArgumentsError",
    "Transport",
    "TransportError",
    "UnsupportedEndpointError",
    "Urllib3Transport",
    "UsageNotIncluded",
    "WebSearchCall",
    "WireApi",
    "__version__",
    "events",
    "hookimpl",
    "items",
    "json_schema",
    "load_providers",
]
