"""codexapi: a synchronous, plugin-based client for the model APIs the Codex CLI speaks.

    from codexapi import Client, Provider, ResponsesRequest, Message
    with Client(Provider(base_url="http://127.0.0.1:8000/v1")) as client:
        print(client.stream(ResponsesRequest(model="m", input="Hello")).collect().text)

Every public name is imported from the module that holds it the first time it is used (a
module ``__getattr__``, PEP 562): ``import codexapi`` loads next to nothing, and a program pays
only for what it touches. urllib3, for one, loads when a Client builds its default transport.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; _EXPORTS says the same for the runtime
    from . import events, items
    from .attachments import Attachment
    from .auth import Auth, AzureKeyAuth, BearerAuth, FlowAuth, NoAuth
    from .auth_file import CodexAuthFile
    from .client import (
        ChatClient,
        Client,
        CompactClient,
        ModelInfo,
        ModelList,
        ModelsClient,
        ResponsesClient,
    )
    from .command_auth import CommandAuth
    from .decoding import StreamDecoder
    from .errors import (
        ApiError,
        ApiRateLimitError,
        AuthError,
        CodexApiError,
        ConfigError,
        ConnectTimeout,
        ContextWindowExceeded,
        CyberPolicy,
        DeadlineExceeded,
        IdleTimeout,
        InvalidRequest,
        ModelUnavailable,
        OutputParseError,
        PluginError,
        QuotaExceeded,
        RateLimitError,
        ReadTimeout,
        ResponseTooLarge,
        ServerOverloaded,
        StreamDropped,
        StreamError,
        TLSHandshakeError,
        ToolArgumentsError,
        ToolLoopLimit,
        TransportError,
        UndecodableEvent,
        UnsupportedEndpointError,
        UsageLimitReached,
        UsageNotIncluded,
    )
    from .events import (
        Completed,
        Created,
        Event,
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
    from .http.transport import HttpRequest, HttpResponse, Transport
    from .http.urllib3_transport import Urllib3Transport
    from .items import (
        Compaction,
        CompactionTrigger,
        CustomToolCall,
        CustomToolCallOutput,
        FunctionCall,
        FunctionCallOutput,
        ImageGenerationCall,
        Item,
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
    from .schema import json_schema
    from .session import SessionContext, TurnState
    from .sse import SseMessage
    from .stream import ResponseStream, StreamResult
    from .tools import Tool, ToolRun
    from .wires import Wire


def _names(module: str, names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), module)


#: Public name -> the module (under ``codexapi.``) that defines it; a module's own name maps
#: to the module itself.
_EXPORTS: dict[str, str] = {
    "events": "events",
    "items": "items",
    **_names("attachments", "Attachment"),
    **_names("auth", "Auth AzureKeyAuth BearerAuth FlowAuth NoAuth"),
    **_names("auth_file", "CodexAuthFile"),
    **_names("client", "ChatClient Client CompactClient ModelInfo ModelList ModelsClient "
                       "ResponsesClient"),
    **_names("command_auth", "CommandAuth"),
    **_names("decoding", "StreamDecoder"),
    **_names("errors", "ApiError ApiRateLimitError AuthError CodexApiError ConfigError "
                       "ConnectTimeout ContextWindowExceeded CyberPolicy DeadlineExceeded "
                       "IdleTimeout InvalidRequest ModelUnavailable OutputParseError "
                       "PluginError QuotaExceeded RateLimitError ReadTimeout ResponseTooLarge "
                       "ServerOverloaded StreamDropped StreamError TLSHandshakeError "
                       "ToolArgumentsError ToolLoopLimit TransportError UndecodableEvent "
                       "UnsupportedEndpointError UsageLimitReached UsageNotIncluded"),
    **_names("events", "Completed Created Event ModelsEtag ModelVerifications OutputItemAdded "
                       "OutputItemDone OutputTextDelta RateLimits RateLimitSnapshot "
                       "ReasoningContentDelta ReasoningSummaryDelta ReasoningSummaryDone "
                       "ReasoningSummaryPartAdded SafetyBuffering ServerModel "
                       "ServerReasoningIncluded TokenUsage ToolCallInputDelta "
                       "TurnModerationMetadata"),
    **_names("hookspecs", "hookimpl"),
    **_names("http.transport", "HttpRequest HttpResponse Transport"),
    **_names("http.urllib3_transport", "Urllib3Transport"),
    **_names("items", "Compaction CompactionTrigger CustomToolCall CustomToolCallOutput "
                      "FunctionCall FunctionCallOutput ImageGenerationCall Item LocalShellCall "
                      "Message Reasoning WebSearchCall"),
    **_names("models", "Provider ReasoningConfig ResponsesRequest RetryPolicy TextControls "
                       "WireApi load_providers"),
    **_names("schema", "json_schema"),
    **_names("session", "SessionContext TurnState"),
    **_names("sse", "SseMessage"),
    **_names("stream", "ResponseStream StreamResult"),
    **_names("tools", "Tool ToolRun"),
    **_names("wires", "Wire"),
}

__all__ = [
    "ApiError",
    "ApiRateLimitError",
    "Attachment",
    "Auth",
    "AuthError",
    "AzureKeyAuth",
    "BearerAuth",
    "ChatClient",
    "Client",
    "CodexApiError",
    "CodexAuthFile",
    "CommandAuth",
    "CompactClient",
    "Compaction",
    "CompactionTrigger",
    "Completed",
    "ConfigError",
    "ConnectTimeout",
    "ContextWindowExceeded",
    "Created",
    "CustomToolCall",
    "CustomToolCallOutput",
    "CyberPolicy",
    "DeadlineExceeded",
    "Event",
    "FlowAuth",
    "FunctionCall",
    "FunctionCallOutput",
    "HttpRequest",
    "HttpResponse",
    "IdleTimeout",
    "ImageGenerationCall",
    "InvalidRequest",
    "Item",
    "LocalShellCall",
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
    "ReasoningSummaryDone",
    "ReasoningSummaryPartAdded",
    "ResponseStream",
    "ResponseTooLarge",
    "ResponsesClient",
    "ResponsesRequest",
    "RetryPolicy",
    "SafetyBuffering",
    "ServerModel",
    "ServerOverloaded",
    "ServerReasoningIncluded",
    "SessionContext",
    "SseMessage",
    "StreamDecoder",
    "StreamDropped",
    "StreamError",
    "StreamResult",
    "TLSHandshakeError",
    "TextControls",
    "TokenUsage",
    "Tool",
    "ToolArgumentsError",
    "ToolCallInputDelta",
    "ToolLoopLimit",
    "ToolRun",
    "Transport",
    "TransportError",
    "TurnModerationMetadata",
    "TurnState",
    "UndecodableEvent",
    "UnsupportedEndpointError",
    "Urllib3Transport",
    "UsageLimitReached",
    "UsageNotIncluded",
    "WebSearchCall",
    "Wire",
    "WireApi",
    "__version__",
    "events",
    "hookimpl",
    "items",
    "json_schema",
    "load_providers",
]

if not TYPE_CHECKING:  # type checkers see the imports above instead

    def __getattr__(name: str) -> Any:
        where = _EXPORTS.get(name)
        if where is None:
            raise AttributeError(f"module 'codexapi' has no attribute {name!r}")
        module = import_module(f"codexapi.{where}")
        value = module if where == name else getattr(module, name)
        globals()[name] = value  # found once: later lookups never come back here
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


# A library logs, the application decides where it goes.
logging.getLogger("codexapi").addHandler(logging.NullHandler())
