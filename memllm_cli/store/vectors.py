"""Vectors: the embedding cache, the sqlite-vec name index and nearest-neighbour lookups.

Writes never run the embedding model; names and labels are marked unembedded and
:meth:`Vectors.index_pending` embeds them before a read or search needs them. A
memory is bound to one embedding model (recorded in ``meta``) so vectors from two
models never mix. This module owns the ``embeddings``, ``name_vectors`` and ``meta``
tables and the ``embedded`` flags of names and relations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from memllm_cli.embed import Embedder
from memllm_cli.errors import EmbeddingMismatchError
from memllm_cli.store import db
from memllm_cli.store.oplog import OpLog


class Vectors:
    """Embeddings of names and relation labels, cached and indexed."""

    def __init__(self, conn: db.Connection, oplog: OpLog) -> None:
        self._conn = conn
        self._oplog = oplog

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def has_index(self) -> bool:
        return self.meta("embedding_model") is not None

    def check_embedder(self, embedder: Embedder) -> None:
        """Bind this memory to ``embedder`` on first use; refuse a different one afterwards."""
        model, dim = self.meta("embedding_model"), self.meta("embedding_dim")
        if model is None:
            with self._oplog.batch("index", "create vector index"):
                self._create_index(embedder)
            return
        if model != embedder.model_id or int(dim or 0) != embedder.dim:
            raise EmbeddingMismatchError(
                f"this memory's vectors come from {model} ({dim}-d), but memllm is using "
                f"{embedder.model_id} ({embedder.dim}-d); run 'memllm doctor --reembed' to "
                "rebuild them"
            )

    def _create_index(self, embedder: Embedder) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedding_model', ?), "
            "('embedding_dim', ?)",
            (embedder.model_id, str(embedder.dim)),
        )
        self._conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS name_vectors "
            f"USING vec0(embedding bit[{embedder.dim}])"
        )

    def reembed(self, embedder: Embedder) -> None:
        """Throw away every vector and bind the memory to ``embedder`` (vectors rebuild lazily)."""
        with self._oplog.batch("index", "rebuild vector index"):
            self._conn.execute("DROP TABLE IF EXISTS name_vectors")
            self._conn.execute("DELETE FROM embeddings")
            self._conn.execute("UPDATE names SET embedded = 0")
            self._conn.execute("UPDATE relations SET embedded = 0")
            self._create_index(embedder)

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> list[bytes]:
        """Vectors for ``texts``, from the cache where possible; new ones are cached."""
        unique = list(dict.fromkeys(texts))
        found: dict[str, bytes] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._conn.execute(
                    f"SELECT text, vector FROM embeddings WHERE text IN ({marks})", chunk
                ).fetchall()
            )
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = embedder.embed(missing)
            found.update(zip(missing, vectors, strict=True))
            self._conn.executemany(
                "INSERT OR IGNORE INTO embeddings (text, vector) VALUES (?, ?)",
                list(zip(missing, vectors, strict=True)),
            )
        return [found[t] for t in texts]

    def pending(self) -> int:
        """Names and labels not yet embedded."""
        names = self._conn.execute("SELECT count(*) FROM names WHERE embedded = 0").fetchone()[0]
        labels = self._conn.execute("SELECT count(*) FROM relations WHERE embedded = 0").fetchone()[
            0
        ]
        return names + labels

    def index_pending(
        self,
        embedder: Embedder,
        progress: Callable[[int, int], object] | None = None,
        chunk: int = 256,
    ) -> int:
        """Embed every name and label written since the last call; return how many.

        Writes stay fast because they never run the embedding model; reads that need
        vectors call this first. Each chunk commits on its own: the work is derived
        and idempotent, so an interruption loses nothing.
        """
        self.check_embedder(embedder)
        done = 0
        while True:
            rows = self._conn.execute(
                "SELECT id, name FROM names WHERE embedded = 0 ORDER BY id LIMIT ?", (chunk,)
            ).fetchall()
            labels = (
                []
                if rows
                else self._conn.execute(
                    "SELECT id, label FROM relations WHERE embedded = 0 ORDER BY id LIMIT ?",
                    (chunk,),
                ).fetchall()
            )
            if not rows and not labels:
                return done
            # The embedding model runs before the write lock is taken: other writers never
            # wait for it. A name changed or removed meanwhile is left for the next round.
            vectors = self.embed(embedder, [r[1] for r in rows or labels])
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if rows:
                    still = set(
                        self._conn.execute(
                            "SELECT id, name FROM names WHERE embedded = 0 "
                            "AND id IN (SELECT value FROM json_each(?))",
                            (json.dumps([r[0] for r in rows]),),
                        ).fetchall()
                    )
                    fresh = [(r[0], v) for r, v in zip(rows, vectors, strict=True) if r in still]
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO name_vectors (rowid, embedding) "
                        "VALUES (?, vec_quantize_binary(?))",
                        fresh,
                    )
                    self._conn.executemany(
                        "UPDATE names SET embedded = 1 WHERE id = ?", [(f[0],) for f in fresh]
                    )
                else:
                    self._conn.executemany(
                        "UPDATE relations SET embedded = 1 WHERE id = ?", [(r[0],) for r in labels]
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            done += len(rows or labels)
            if progress is not None:
                progress(done, done + self.pending())

    def forget_entity(self, entity_id: int) -> None:
        """Drop the vectors of an entity's names (before the names themselves go)."""
        if self.has_index():
            self._conn.execute(
                "DELETE FROM name_vectors WHERE rowid IN "
                "(SELECT id FROM names WHERE entity_id = ?)",
                (entity_id,),
            )

    def forget_name(self, name_id: int) -> None:
        """Drop the vector of one name (an alias undone)."""
        if self.has_index():
            self._conn.execute("DELETE FROM name_vectors WHERE rowid = ?", (name_id,))

    def similar_names(
        self, vector: bytes, *, k: int, max_distance: float, oversample: int = 4
    ) -> list[tuple[int, float]]:
        """(entity id, cosine distance) of the names nearest ``vector``, nearest first.

        A Hamming KNN over 1-bit vectors finds ``k * oversample`` candidates fast; their
        float vectors, from the embedding cache, re-rank them exactly.
        """
        if not self.has_index():
            return []
        candidates = self._conn.execute(
            "SELECT rowid FROM name_vectors WHERE embedding MATCH vec_quantize_binary(?) AND k = ?",
            (vector, k * oversample),
        ).fetchall()
        if not candidates:
            return []
        rows = self._conn.execute(
            "SELECT n.entity_id, min(vec_distance_cosine(e.vector, ?)) AS d "
            "FROM names n JOIN embeddings e ON e.text = n.name "
            "WHERE n.id IN (SELECT value FROM json_each(?)) "
            "GROUP BY n.entity_id HAVING d <= ? ORDER BY d, n.entity_id LIMIT ?",
            (vector, json.dumps([c[0] for c in candidates]), max_distance, k),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def similar_relations(
        self, vector: bytes, *, k: int, max_distance: float
    ) -> list[tuple[int, float]]:
        """(relation id, cosine distance) of the labels nearest ``vector``, by brute force.

        Relations number in the hundreds, so an exact scan is cheap.
        """
        rows = self._conn.execute(
            "SELECT r.id, vec_distance_cosine(e.vector, ?) AS d FROM relations r "
            "JOIN embeddings e ON e.text = r.label WHERE d <= ? ORDER BY d, r.id LIMIT ?",
            (vector, max_distance, k),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def distances(
        self, embedder: Embedder, vector: bytes, texts: Sequence[str]
    ) -> dict[str, float]:
        """Cosine distance from ``vector`` to each of ``texts`` (embedded once, then cached)."""
        unique = list(dict.fromkeys(texts))
        self.embed(embedder, unique)
        rows = self._conn.execute(
            "SELECT text, vec_distance_cosine(vector, ?) FROM embeddings "
            "WHERE text IN (SELECT value FROM json_each(?))",
            (vector, json.dumps(unique)),
        )
        return {row[0]: row[1] for row in rows}
