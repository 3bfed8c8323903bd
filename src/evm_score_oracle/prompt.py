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
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from .scoring import DIMENSION_MAX

# Part of every signed score's metadata and of the sampling seed: change it
# whenever the prompt text or the expected answer changes.
PROMPT_VERSION = "prompt-v1"

DIMENSIONS = ("activity", "maturity", "diversity", "risk", "value")

# Points each dimension contributes to the model's 0-1000 score: the rubric's
# maximum points per dimension, so the model's score and the rubric total are
# on the same scale and can be compared with a band.
DIMENSION_WEIGHTS = {name: DIMENSION_MAX[name] for name in DIMENSIONS}

MAX_REASONING_CHARS = 300
MAX_LIST_ITEMS = 3
MAX_ITEM_CHARS = 80

# Absolute Unix times cost many tokens and add nothing to the relative ages
# (account_age_days, days_since_last_activity) the features also carry.
_LEFT_OUT_SUFFIXES = ("_ts",)

# Decimal strings (ETH amounts) are rounded to this many places in the prompt.
DECIMAL_PLACES = 4

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
    ``DECIMAL_PLACES``) and ratios ("3/75") under a lower-case snake_case name
    not ending in ``_ts``, one level of nested mappings (``recent.d7``),
    and ``known_protocols`` entries that are among ``protocol_labels``. Every
    other value is dropped, so no string from chain data or from a caller can
    reach the model.
    """
    labels = frozenset(protocol_labels)
    facts: dict[str, str] = {}

    for name, value in features.items():
        if not _FACT_NAME.fullmatch(str(name)) or str(name).endswith(_LEFT_OUT_SUFFIXES):
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

    The rubric's points are shown on the 0-100 scale the answer uses, so a
    model that echoes them still gives a valid answer. The wallet address is
    left out on purpose: it tells the model nothing, and leaving it out means
    the same facts give the same prompt for any wallet.
    """
    # Zero counts are left out to save tokens; the prompt says so.
    fact_lines = "\n".join(f"{name}={value}" for name, value in sorted(facts.items()) if value not in ("0", "false"))
    rubric_line = " ".join(f"{name}={rubric_percent(rubric_dimensions, name)}" for name in DIMENSIONS)

    return (
        "Assess the trustworthiness of an Ethereum wallet from these facts (facts not listed are 0).\n"
        f"{fact_lines}\n"
        f"Rule-based assessment, 0-100 each: {rubric_line}\n"
        "Return JSON with an integer 0-100 for each of activity, maturity, diversity, "
        "risk (100 means no sign of risk) and value, a one-sentence reasoning, "
        "and up to 3 short risk_factors and strengths."
    )


def rubric_percent(rubric_dimensions: Mapping[str, int], name: str) -> int:
    """Return a rubric dimension's points as 0-100 of its weight, rounded half up."""
    points = min(max(int(rubric_dimensions.get(name, 0)), 0), DIMENSION_WEIGHTS[name])
    weight = DIMENSION_WEIGHTS[name]
    return (points * 100 + weight // 2) // weight


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
    if "." not in text:
        return text
    rounded = Decimal(text).quantize(Decimal(1).scaleb(-DECIMAL_PLACES), rounding=ROUND_HALF_UP)
    return format(rounded.normalize(), "f")
