"""EntityQuestions: simple questions over Wikidata relations, one file per relation and split."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from memllm_cli.datasets.relations import label_for

FOLDER = "entityquestions"


@dataclass(frozen=True)
class Question:
    question: str
    subject: str
    relation: str  # English label
    answers: tuple[str, ...]


def _template_regex(template: str) -> re.Pattern[str]:
    before, after = template.split("[X]")
    return re.compile(re.escape(before) + "(.+?)" + re.escape(after) + "$")


def questions(data: Path | None, split: str = "train", root: Path | None = None) -> list[Question]:
    """EntityQuestions of ``split``, the subject recovered from its relation's template."""
    root = root or data / FOLDER
    templates = json.loads((root / "relation_query_templates.json").read_text(encoding="utf-8"))
    found = []
    for path in sorted((root / split).glob("P*.json")):
        pid = path.name.split(".")[0]
        pattern = _template_regex(templates[pid])
        label = label_for(pid, data)
        for item in json.loads(path.read_text(encoding="utf-8")):
            match = pattern.match(item["question"])
            if match and item["answers"]:
                found.append(
                    Question(item["question"], match.group(1), label, tuple(item["answers"]))
                )
    return found
