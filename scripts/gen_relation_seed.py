"""Write memllm_cli/store/relations.json, the relation vocabulary seeded into every memory.

The labels are the 96 DocRED relations (Wikidata labels, CC0), read from the shared data
folder; the cardinalities are this project's choice for a personal memory: a relation marked
"one" keeps one current object, and a new object supersedes the old (kept in history).

    python scripts/gen_relation_seed.py ../shared/data/relations/docred_rel_info.json
"""

import json
import sys
from pathlib import Path

ONE_VALUED = {
    "P6",
    "P19",
    "P20",
    "P22",
    "P25",
    "P35",
    "P36",
    "P155",
    "P156",
    "P159",
    "P488",
    "P551",
    "P569",
    "P570",
    "P571",
    "P576",
    "P577",
    "P580",
    "P582",
    "P585",
    "P749",
    "P1198",
    "P1365",
    "P1366",
    "P1376",
}


def main(path: str) -> None:
    labels = json.loads(Path(path).read_text())
    rows = [
        {"pid": pid, "label": label, "cardinality": "one" if pid in ONE_VALUED else "many"}
        for pid, label in sorted(labels.items(), key=lambda item: int(item[0][1:]))
    ]
    out = Path(__file__).resolve().parent.parent / "memllm_cli" / "store" / "relations.json"
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} relations to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/relations/docred_rel_info.json")
