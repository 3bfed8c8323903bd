"""The prompt sent to the language model and the answer expected back.

Only numbers and the oracle's own fixed labels enter the prompt. Feature
values that are not numbers (token names, contract names, anything a caller or
the chain chose) are dropped before the prompt is built, because a prompt that
quotes chain data lets any token deployer write instructions to the model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from .scoring import DIMENSION_MAX

# Part of every signed score's metadata and of the sampling seed: change it
# whenever the prompt text or the expected answer changes.
PROMPT_VERSION = "prompt-v2"

DIMENSIONS = ("activity", "maturity", "diversity", "risk", "value")

# Points each dimension contributes to the model's 0-1000 score: the rubric's
# maximum points per dimension, so the model's score and the rubric total are
# on the same scale and can be compared with a band.
DIMENSION_WEIGHTS = {name: DIMENSION_MAX[name] for name in DIMENSIONS}

# Every character the schema allows is output the model may spend tokens on,
# so the limits are as tight as a useful assessment allows.
MAX_REASONING_CHARS = 120
MAX_LIST_ITEMS = 2
MAX_ITEM_CHARS = 40

# Sent as the system message: the fixed instructions, apart from the wallet's
# numbers. It also replaces any default system message of the model's
# template, which would cost tokens on every call.
SYSTEM_PROMPT = (
    "You rate Ethereum wallets' trustworthiness. Facts not listed are 0. "
    "Reply in JSON: your own 0-100 for each rule-based score (risk 100 = no risk sign), "
    f"a short reasoning, up to {MAX_LIST_ITEMS} risk_factors and strengths."
)

# Absolute Unix times cost many tokens and add nothing to the relative ages
# (account_age_days, days_since_last_activity) the features also carry.
_LEFT_OUT_SUFFIXES = ("_ts",)

# Facts that shown facts already imply, or that feed the rubric's arithmetic
# but tell a reader little the shown counts do not: each costs tokens.
# successful_tx_count is tx_count - failed_count, failed_permille is
# failed_count per outgoing_count, capped_volume_eth is bounded by the value
# totals, and gas, selectors and outgoing counterparties refine the counts.
_LEFT_OUT_NAMES = frozenset(
    {
        "successful_tx_count",
        "failed_permille",
        "capped_volume_eth",
        "gas_spent_eth",
        "distinct_selectors",
        "outgoing_counterparties",
    }
)

# Decimal strings (ETH amounts) keep this many significant digits in the
# prompt, and every digit of the integer part: each digit is a token, and a
# reader judging a wallet needs 24.9 ETH, not 24.90083.
SIGNIFICANT_DIGITS = 3

# Room for a 30-digit integer part; the default context (28 digits) would
# raise on such a value instead of keeping it.
_DECIMAL_CONTEXT = Context(prec=64)

# Shorter labels for long feature names, used only in the prompt text.
PROMPT_LABELS = {
    "account_age_days": "age_days",
    "days_since_last_activity": "idle_days",
    "known_protocols": "protocols",
    "max_tx_value_eth": "max_tx_eth",
    "total_value_in_eth": "eth_in",
    "total_value_out_eth": "eth_out",
    "unique_counterparties": "counterparties",
}

_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
_NUMBER = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
_RATIO = re.compile(r"[0-9]{1,30}/[0-9]{1,30}")

ShortText = Annotated[str, StringConstraints(max_length=MAX_ITEM_CHARS)]
Score = Annotated[StrictInt, Field(ge=0, le=100)]


class ModelAnswer(BaseModel):
    """The JSON object the model must return; its schema is sent as ``format``.

    Unknown keys are rejected rather than ignored: a model that adds keys is not
    following the schema, and a retry with a new seed usually fixes that.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    activity: Score
    maturity: Score
    diversity: Score
    risk: Score
    value: Score
    reasoning: Annotated[str, StringConstraints(max_length=MAX_REASONING_CHARS)]
    risk_factors: Annotated[list[ShortText], Field(max_length=MAX_LIST_ITEMS)]
    strengths: Annotated[list[ShortText], Field(max_length=MAX_LIST_ITEMS)]

    def dimensions(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in DIMENSIONS}


def answer_schema() -> dict:
    """Return the JSON schema of ``ModelAnswer`` for Ollama's ``format`` field.

    Titles and the description are removed: they add nothing to the grammar.
    """
    schema = ModelAnswer.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for field in schema["properties"].values():
        field.pop("title", None)
    return schema


def weighted_score(dimensions: Mapping[str, int]) -> int:
    """Map five 0-100 assessments to 0-1000, each weighted by ``DIMENSION_WEIGHTS``.

    score = 1000 * sum(assessment x weight) / (100 x sum(weights)), in integer
    arithmetic rounded half up, so every platform gets the same result.
    """
    weighted = sum(dimensions[name] * DIMENSION_WEIGHTS[name] for name in DIMENSIONS)
    total_weight = sum(DIMENSION_WEIGHTS.values())
    return (weighted * 10 + total_weight // 2) // total_weight


def prompt_facts(features: Mapping[str, object], protocol_labels: Iterable[str]) -> dict[str, str]:
    """Keep the feature values that are safe to show the model, as text.

    Kept: ints, bools, finite floats, decimal strings ("1.25", rounded to
    ``SIGNIFICANT_DIGITS``) and ratios ("3/75") under a lower-case snake_case
    name not ending in ``_ts``, one level of nested mappings (``recent.d7``),
    and ``known_protocols`` entries that are among ``protocol_labels``. Every
    other value is dropped, so no string from chain data or from a caller can
    reach the model. Redundant facts are dropped too (``_LEFT_OUT_NAMES``,
    and ``activity_count`` when it equals ``tx_count``).
    """
    labels = frozenset(protocol_labels)
    facts: dict[str, str] = {}

    for name, value in features.items():
        if not _FACT_NAME.fullmatch(str(name)) or _left_out(str(name), value, features):
            continue

        if name == "known_protocols":
            facts[name] = _protocol_list(value, labels)
        elif isinstance(value, Mapping):
            facts.update(_nested_facts(name, value))
        else:
            text = _safe_number(value)
            if text is not None:
                facts[name] = text

    return facts


def build_prompt(facts: Mapping[str, str], rubric_dimensions: Mapping[str, int]) -> str:
    """Build the prompt text from already filtered facts and the rubric's points.

    The prompt contains only the wallet's numbers, and ``SYSTEM_PROMPT``
    contains the instructions.

    Facts appear under their ``PROMPT_LABELS`` label where one exists. The
    rubric's points are shown on the 0-100 scale the answer uses, so a
    model that echoes them still gives a valid answer. The wallet address is
    left out on purpose: it tells the model nothing, and leaving it out means
    the same facts give the same prompt for any wallet.
    """
    # Zero counts are left out to save tokens; the prompt says so.
    labelled = {PROMPT_LABELS.get(name, name): value for name, value in facts.items() if value not in ("0", "false")}
    fact_lines = "\n".join(f"{label}={value}" for label, value in sorted(labelled.items()))
    rubric_line = " ".join(f"{name}={rubric_percent(rubric_dimensions, name)}" for name in DIMENSIONS)

    return f"{fact_lines}\nRule-based scores: {rubric_line}"


def rubric_percent(rubric_dimensions: Mapping[str, int], name: str) -> int:
    """Return a rubric dimension's points as 0-100 of its weight, rounded half up."""
    points = min(max(int(rubric_dimensions.get(name, 0)), 0), DIMENSION_WEIGHTS[name])
    weight = DIMENSION_WEIGHTS[name]
    return (points * 100 + weight // 2) // weight


def _left_out(name: str, value: object, features: Mapping[str, object]) -> bool:
    if name.endswith(_LEFT_OUT_SUFFIXES) or name in _LEFT_OUT_NAMES:
        return True
    # activity_count only adds something when token or internal transfers
    # make it differ from tx_count.
    return name == "activity_count" and value == features.get("tx_count")


def _protocol_list(value: object, labels: frozenset[str]) -> str:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return "none"
    known = sorted({item for item in value if isinstance(item, str) and item in labels})
    return ",".join(known) if known else "none"


def _nested_facts(parent: str, values: Mapping) -> dict[str, str]:
    facts: dict[str, str] = {}
    for name, value in values.items():
        if not _FACT_NAME.fullmatch(str(name)):
            continue
        text = _safe_number(value)
        if text is not None:
            facts[f"{parent}.{name}"] = text
    return facts


def _safe_number(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return _round_decimal(value)
    if isinstance(value, str) and _RATIO.fullmatch(value):
        return value
    # None, lists and free text are left out.
    return None


def _round_decimal(text: str) -> str:
    value = Decimal(text)
    if value.is_zero():
        return "0"
    if "." not in text:
        return text

    exponent = min(value.adjusted() - SIGNIFICANT_DIGITS + 1, 0)
    rounded = value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT)
    return format(rounded.normalize(_DECIMAL_CONTEXT), "f")
