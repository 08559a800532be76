"""A record's seed, and so its cache key, come from what is asked, not
where it sits (#40); an output begun by an earlier rolebatch keeps the id
rule it was begun under."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rolebatch.records.sidecar import sidecar_path
from tests.helpers import read_lines, write_job

QUERIES = [f"Write a poem about thing {i}." for i in range(8)]


def records(queries: list[str]) -> list[dict]:
    """Records with default ids (line-N): their ids follow their place."""
    return [{"query": q, "role": "You are a renowned poet."} for q in queries]


def by_id_seed(record_id: str, sample: int = 0) -> int:
    """The earlier rule: from the record's id and sample."""
    digest = hashlib.sha256(f"{record_id}\0{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def test_a_line_inserted_at_the_top_buys_one_request(rolebatch, fake, tmp_path):
    """The issue's case: one line inserted above eight, default ids: every
    unchanged record keeps its seed, hits the cache, and only the new one is
    bought."""
    first = write_job(tmp_path / "a.jsonl", records(QUERIES))
    assert rolebatch(str(first), "-o", "a.out.jsonl", "--cache", "cache").code == 0
    assert len(fake.requests) == 8
    fake.reset()
    second = write_job(tmp_path / "b.jsonl", records(["A new first question.", *QUERIES]))
    assert rolebatch(str(second), "-o", "b.out.jsonl", "--cache", "cache").code == 0
    assert len(fake.requests) == 1 and "A new first question." in fake.requests[0].text
    before = {line["query"]: line for line in read_lines(Path("a.out.jsonl"))}
    after = {line["query"]: line for line in read_lines(Path("b.out.jsonl"))}
    for query in QUERIES:
        assert after[query]["id"] != before[query]["id"]  # line-1 is now line-2 ...
        assert after[query]["seed"] == before[query]["seed"]
        assert after[query]["response"] == before[query]["response"]
    # The seed went with the request.
    seeds = {line["seed"] for line in after.values()}
    assert len(seeds) == 9


def test_samples_still_get_distinct_seeds(rolebatch, fake, tmp_path):
    job = write_job(tmp_path / "j.jsonl", records(QUERIES[:2]))
    assert rolebatch(str(job), "-o", "s.jsonl", "--samples", "3").code == 0
    lines = read_lines(Path("s.jsonl"))
    assert len({line["seed"] for line in lines}) == 6
    assert len({r.body["seed"] for r in fake.requests}) == 6


def test_an_output_begun_under_the_id_rule_keeps_it(rolebatch, fake, tmp_path):
    """An output whose sidecar says nothing of seeds (an earlier rolebatch
    wrote it) is resumed under the id rule its lines were sampled under;
    --fresh begins it anew under the content rule."""
    job = write_job(tmp_path / "j.jsonl", records(QUERIES[:4]))
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    # As the earlier version left it: format 2, no rule said, id-rule seeds.
    meta_path = sidecar_path(Path("o.jsonl"))
    meta = json.loads(meta_path.read_text())
    meta["rolebatch"] = 2
    del meta["config"]["seeds"]
    meta_path.write_text(json.dumps(meta))
    lines = read_lines(Path("o.jsonl"))
    with Path("o.jsonl").open("w") as out:
        for line in lines:
            out.write(json.dumps({**line, "seed": by_id_seed(line["id"])}) + "\n")
    fake.reset()
    grown = write_job(tmp_path / "j.jsonl", records(QUERIES[:6]))
    result = rolebatch(str(grown), "-o", "o.jsonl")
    assert result.code == 0, result.err
    assert len(fake.requests) == 2  # the two new records only
    lines = read_lines(Path("o.jsonl"))
    assert [line["seed"] for line in lines] == [by_id_seed(line["id"]) for line in lines]
    assert json.loads(meta_path.read_text())["config"]["seeds"] == "id"
    assert rolebatch(str(grown), "-o", "o.jsonl").code == 0  # and again: still the id rule
    fake.reset()
    assert rolebatch(str(grown), "-o", "o.jsonl", "--fresh").code == 0
    lines = read_lines(Path("o.jsonl"))
    assert all(line["seed"] != by_id_seed(line["id"]) for line in lines)
    assert json.loads(meta_path.read_text())["config"]["seeds"] == "content"
