"""The batch journal's record of rounds: what each record's submissions came
to, rebuilt after a crash exactly once each, and forgotten when its line is
written."""

from __future__ import annotations

from pathlib import Path

from rolebatch.via.journal import Journal, Round


def test_rounds_are_rebuilt_once_each_in_attempt_order(tmp_path: Path):
    journal = Journal(tmp_path / "out.jsonl")
    answer = Round(1, "batch_1", "answer", completion={"id": "c1"})
    failed = Round(2, "batch_2", "error", status=503, message="overloaded")
    unrun = Round(3, "batch_3", "unexecuted")
    journal.keep_rounds([(7, answer), (7, failed)])
    journal.keep_rounds([(7, failed), (7, unrun), (9, unrun)])  # collected again after a crash
    rounds = Journal.load(tmp_path / "out.jsonl").rounds()
    assert rounds == {7: [answer, failed, unrun], 9: [unrun]}
    assert [r.reason for r in rounds[7]] == ["reask", "transient", "expired"]


def test_closed_rounds_are_forgotten_and_a_later_round_starts_afresh(tmp_path: Path):
    journal = Journal(tmp_path / "out.jsonl")
    journal.keep_rounds([(3, Round(1, "b1", "error", status=500, message="x"))])
    journal.keep_rounds([(4, Round(1, "b1", "unexecuted"))])
    journal.close_rounds([3])
    assert journal.rounds() == {4: [Round(1, "b1", "unexecuted")]}
    again = Round(1, "b9", "answer", completion={"id": "c9"})
    journal.keep_rounds([(3, again)])  # the error line is run again, from attempt 1
    assert journal.rounds()[3] == [again]


def test_answers_kept_by_an_earlier_version_are_read_as_answers(tmp_path: Path):
    journal = Journal(tmp_path / "out.jsonl")
    journal.directory.mkdir()
    journal.rounds_path.write_text(
        '{"line": 2, "attempt": 1, "batch_id": "b1", "completion": {"id": "c"}}\n'
    )
    assert journal.rounds() == {2: [Round(1, "b1", "answer", completion={"id": "c"})]}


def test_rounds_an_earlier_version_kept_as_answers_jsonl_are_taken_over(tmp_path: Path):
    journal = Journal(tmp_path / "out.jsonl")
    journal.directory.mkdir()
    (journal.directory / "answers.jsonl").write_text(
        '{"line": 5, "attempt": 1, "batch_id": "b1", "kind": "unexecuted"}\n'
    )
    assert journal.rounds() == {5: [Round(1, "b1", "unexecuted")]}
    assert journal.rounds_path.exists() and not (journal.directory / "answers.jsonl").exists()
    journal.close_rounds([5])
    assert journal.rounds() == {}
