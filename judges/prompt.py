"""The judge prompts, in our own words, and their hashes.

CapEval-QAs (docs/protocol.md §2): the judge gets one user message holding the rules, the
caption (`[Description]`) and one question with options A-D (`[Question]`), and ends with a
boxed letter. The LAR judge (§4) decides whether a response carries a reference fact. The
prompt hash goes into every verdict's provenance and every cache key, so editing a template
can never return answers given to the old one.
"""

from __future__ import annotations

import hashlib

MCQA_TEMPLATE = """You will read a description of an image and answer one multiple-choice question about it. \
The description may or may not hold enough information to answer.
Use only what the description says. Do not use outside knowledge and do not guess beyond what it supports.

Rules:
- Pick exactly one option.
- Pick A, B or C only when the description states it explicitly or supports it clearly.
- When none of A, B or C can be confirmed from the description, pick D.
- You may reason briefly first. Then write the final line as: Answer: \\boxed{{X}}
  where X is exactly one letter among A, B, C, D.

[Description]
{caption}

[Question]
{question}"""

BINARY_TEMPLATE = """You will check whether a response recalls a known fact.
The response is correct when it contains the core information of the fact, even in other words or with \
extra details. It is wrong when it contradicts the fact, leaves it out, or is too vague to tell.

[Fact]
{reference}

[Response]
{response}

Reason briefly if you need to. Then write the final line as exactly one word: Correct or Wrong."""


def prompt_hash(template: str) -> str:
    """Short sha256 of a template: part of a judge's provenance and of every cache key."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def mcqa_prompt(caption: str, question_block: str) -> str:
    return MCQA_TEMPLATE.format(caption=caption, question=question_block)


def binary_prompt(response: str, reference: str) -> str:
    return BINARY_TEMPLATE.format(response=response, reference=reference)
