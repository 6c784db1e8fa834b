"""A sop platform plugin in Python: the same `sop:plugin/platform` world as the Rust plugins.

`echo` answers its input back; `shout` also logs and stores a counter in the plugin's
key-value store; webhooks with a JSON body `{"from", "text", "at_ms"}` become
`message_received` events. Build (see docs/plugins.md):

    componentize-py -d ../../wit -w platform componentize app -o python_echo.wasm
"""

import hashlib
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import kv, logging, types

INPUT_SCHEMA = json.dumps({
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
})


def action(name: str, description: str) -> types.ActionSpec:
    return types.ActionSpec(
        name=name,
        description=description,
        input_schema=INPUT_SCHEMA,
        delivery=types.Delivery.IDEMPOTENT,
        audience=types.Audience.NONE,
        asynchronous=False,
        time_critical=False,
        rate_limits=[],
        batch=None,
    )


def parse_text(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise Err(types.PluginError_InvalidInput(f"input is not JSON: {e}"))
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise Err(types.PluginError_InvalidInput("input needs a string `text`"))
    return value["text"]


class Plugin(exports.Plugin):
    def describe(self) -> types.Manifest:
        return types.Manifest(
            name="python_echo",
            version="0.1.0",
            description="Example plugin written in Python with componentize-py",
            actions=[
                action("echo", "Answers its input back"),
                action("shout", "Answers its input in capitals and counts calls in kv"),
            ],
            events=[types.EventSpec(
                kind="message_received",
                description="A JSON webhook {from, text, at_ms}",
                attributes_schema='{"type":"object"}',
            )],
            rate_limits=[],
            touch_limits=[],
            # The host requires a plugin with actions to name the hosts it may call.
            hosts=["echo.example.com"],
            account_schema='{"type":"object"}',
        )

    def invoke(self, call: types.Invocation) -> types.InvokeOutcome:
        text = parse_text(call.input)
        if call.action == "echo":
            return types.InvokeOutcome_Done(json.dumps({"text": text}))
        if call.action == "shout":
            count = int((kv.get("shouts") or b"0").decode()) + 1
            kv.set("shouts", str(count).encode(), None)
            logging.log(logging.Level.INFO, f"shout number {count}")
            return types.InvokeOutcome_Done(json.dumps({"text": text.upper(), "count": count}))
        raise Err(types.PluginError_InvalidInput(f"unknown action `{call.action}`"))

    def check_outcome(self, account, action, idempotency_key, handle) -> types.OutcomeStatus:
        raise Err(types.PluginError_Permanent(f"`{action}` has no outcome to check"))

    def parse_webhook(self, account: types.Account, request: types.WebhookRequest) -> types.WebhookOutcome:
        try:
            body = json.loads(bytes(request.body))
            sender, text, at_ms = body["from"], body["text"], int(body["at_ms"])
        except (ValueError, KeyError, TypeError) as e:
            raise Err(types.WebhookError_Malformed(f"body: {e}"))
        digest = hashlib.sha1(f"{sender}\x1f{at_ms}".encode()).hexdigest()
        event = types.NormalizedEvent(
            kind="message_received",
            dedupe_id=digest,
            occurred_at_ms=at_ms,
            contact=sender,
            staff=None,
            group=None,
            attributes=json.dumps({"text": text}),
        )
        response = types.WebhookResponse(status=200, content_type="text/plain", body=b"ok")
        return types.WebhookOutcome(response=response, events=[event])
