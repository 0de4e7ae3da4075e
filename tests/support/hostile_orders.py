"""order.submitted values for the runtime property test (tests/integration/
test_runtime_properties.py): `near_valid`, a valid order with one thing wrong, written one
way or another (most of which the contract refuses), and `accepted`, orders the contract
accepts that may still trouble the stage.

They start from TEMPLATE, a valid order.submitted whose ids are placeholders; `fresh`
replaces them with new ids of the same length on each send, so an accepted order is new.
"""

import copy
import json
import uuid
from typing import Any

from hypothesis import strategies as st

from tests.support.pipeline import order_submitted

PH_ORDER = "ph-order-000000000000"
PH_EVENT = "00000000-0000-4000-8000-00000000beef"
RAW = "__raw_json_token__"  # where a token json.dumps cannot write is spliced in


def _template() -> dict[str, Any]:
    doc = order_submitted(PH_ORDER, "buyer-prop", {"sku-cap": 1}, "wallet_only").model_dump(
        mode="json"
    )
    doc.update(event_id=PH_EVENT, occurred_at="2024-05-01T12:00:00Z")
    return doc


TEMPLATE = _template()
Path = tuple[str | int, ...]
# Where near_valid changes the template: fields, objects, strings.
PATHS: tuple[Path, ...] = (
    ("event_id",),
    ("event_type",),
    ("schema_version",),
    ("occurred_at",),
    ("correlation_id",),
    ("causation_id",),
    ("idempotency_key",),
    ("payload",),
    ("payload", "order_id"),
    ("payload", "buyer_id"),
    ("payload", "currency"),
    ("payload", "items"),
    ("payload", "items", 0),
    ("payload", "items", 0, "sku_id"),
    ("payload", "items", 0, "quantity"),
    ("payload", "coupon_codes"),
    ("payload", "payment_preference"),
)
OBJECT_PATHS: tuple[Path, ...] = ((), ("payload",), ("payload", "items", 0))


def _at(doc: Any, path: Path) -> Any:
    for p in path:
        doc = doc[p]
    return doc


STRING_PATHS = tuple(p for p in PATHS if isinstance(_at(TEMPLATE, p), str))


# --- strategies -------------------------------------------------------------------------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: json.dumps writes them, strict JSON refuses them
    st.text(max_size=12),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    st.sampled_from(["order.submitted", "order.built", PH_ORDER, "\x00", "1", "EUR", "sku-cap"]),
)
json_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nested(shape: tuple[str, int]) -> str:
    opener, depth = shape
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


raw_tokens = st.one_of(
    # Past Python's 4,300-digit int <-> str limit (CVE-2020-10735).
    st.integers(4_301, 20_000).map(lambda n: "9" * n),
    st.integers(4_301, 20_000).map(lambda n: "-1" + "0" * n),
    st.integers(4_301, 8_000).map(lambda n: "1" + "0" * n + ".5"),
    st.tuples(st.sampled_from(["[", "{"]), st.sampled_from([50, 300, 2_000, 60_000])).map(_nested),
    st.sampled_from(
        [
            "NaN",
            "-Infinity",
            "1e999",
            "1.0",
            "1.5",
            "-0",
            "01",
            "1E2",
            "tru",
            "",
            "[",
            "}",
            '"\x00"',
            '"a\x00b"',
            '"\\u0000"',
            '"\\ud800"',
            '"\\udfff\\ud800"',
            '"\t"',
        ]
    ),
)
event_types = st.one_of(
    st.sampled_from(
        [
            "order.built",
            "order.rejected",
            "Order.Submitted",
            "order.submitted ",
            "",
            "order.submitted\x00",
            "order.submitted.v2",
            "ORDER.SUBMITTED",
        ]
    ),
    st.text(max_size=20),
    json_values,
)
schema_versions = st.one_of(
    st.sampled_from([0, 2, -1, 9, "1", 1.0, True, None, 2**63, [1], {"v": 1}, 1.5]),
    st.integers().filter(lambda v: v != 1),
)
bad_quantities = st.one_of(
    st.sampled_from([1.0, 1.5, 0.5, 1e308, -1.0, float("nan"), float("inf"), 0, -1, 10_001]),
    st.floats(),
)
money_floats = st.one_of(
    st.floats(), st.sampled_from([12.5, 0.1, 1e-9, 1e30, 19.99, float("nan")])
).map(lambda amount: {"amount": amount, "currency": "EUR"})


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid order.submitted with one thing wrong, written one way or another."""
    doc: Any = copy.deepcopy(TEMPLATE)
    token: str | None = None
    ops = "set set raw raw delete extra nul event_type schema_version quantity money not_object"
    op = draw(st.sampled_from(ops.split()))
    if op in ("set", "raw", "delete"):
        path = draw(st.sampled_from(PATHS))
        parent, last = _at(doc, path[:-1]), path[-1]
        if op == "set":
            parent[last] = draw(json_values)
        elif op == "raw":
            parent[last], token = RAW, draw(raw_tokens)
        else:
            del parent[last]
    elif op == "extra":
        where = _at(doc, draw(st.sampled_from(OBJECT_PATHS)))
        where[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    elif op == "nul":
        path = draw(st.sampled_from(STRING_PATHS))
        parent, last = _at(doc, path[:-1]), path[-1]
        text = parent[last]
        at = draw(st.integers(0, len(text)))
        parent[last] = text[:at] + "\x00" + text[at:]
    elif op == "event_type":
        doc["event_type"] = draw(event_types)
    elif op == "schema_version":
        doc["schema_version"] = draw(schema_versions)
    elif op == "quantity":
        doc["payload"]["items"][0]["quantity"] = draw(bad_quantities)
    elif op == "money":
        where = draw(st.sampled_from([doc["payload"], doc["payload"]["items"][0]]))
        where[draw(st.sampled_from(["total", "unit_price", "amount"]))] = draw(money_floats)
    else:
        doc = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if token is not None:
        text = text.replace(json.dumps(RAW), token, 1)
    form = draw(
        st.sampled_from(["utf-8"] * 10 + ["utf-16", "utf-32", "bom", "cut", "trailing", "nul"])
    )
    label = f"near_valid/{op}/{form}"
    if form in ("utf-16", "utf-32"):
        return label, text.encode(form, "surrogatepass")
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate is invalid UTF-8 here
    if form == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif form == "cut":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif form == "trailing":
        raw += draw(st.sampled_from([b"x", b"}", b"\x00", b" {}", b"\n\n1"]))
    elif form == "nul":
        raw += b"\x00"
    return label, raw


@st.composite
def accepted(draw: st.DrawFn) -> tuple[str, bytes]:
    """Orders the contract accepts but that may still trouble the stage."""
    doc: Any = copy.deepcopy(TEMPLATE)
    variant = draw(st.sampled_from(["nul_key", "unknown_sku", "out_of_stock", "as_is"]))
    line = doc["payload"]["items"][0]
    if variant == "nul_key":  # the contract allows any text, Postgres text refuses NUL
        doc["idempotency_key"] = PH_ORDER + "\x00" + draw(st.text(max_size=10))
    elif variant == "unknown_sku":
        line["sku_id"] = "sku-none-" + draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
    elif variant == "out_of_stock":
        line.update(sku_id="sku-rare", quantity=10_000)
    return f"accepted/{variant}", json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


def fresh(value: bytes | None) -> bytes | None:
    """The placeholders replaced by new ids, so an accepted order is a new one."""
    if value is None:
        return None
    order_id = f"pt-{uuid.uuid4().hex[:18]}"
    return value.replace(PH_ORDER.encode(), order_id.encode()).replace(
        PH_EVENT.encode(), str(uuid.uuid4()).encode()
    )


def huge_number() -> bytes:
    """TEMPLATE with a schema_version past Python's int <-> str digit limit."""
    doc = json.dumps({**TEMPLATE, "schema_version": RAW})
    return doc.replace(json.dumps(RAW), "9" * 4_301).encode()
