"""The flat table of id hashes behind the output's bookkeeping."""

from __future__ import annotations

from rolebatch.records.ids import HashIndex, id_hash


def test_keys_that_share_low_bits_are_all_kept_through_growth():
    table = HashIndex(capacity=4)
    # Every key lands on the same slot of the first table: probing and
    # growing must keep them apart.
    keys = [i * 16 + 7 for i in range(1, 2000)]
    for value, key in enumerate(keys):
        assert table.put(key, value) is None
    assert len(table) == len(keys)
    assert [table.get(key) for key in keys] == list(range(len(keys)))
    assert table.get(5) is None
    assert table.put(keys[3], -5) == 3  # replacing returns what was there
    assert table.get(keys[3]) == -5


def test_a_set_without_values_says_what_it_already_had():
    seen = HashIndex(values=False)
    assert seen.add(id_hash("a")) is None
    assert seen.add(id_hash("a")) == 0
    assert id_hash("a") in seen and id_hash("b") not in seen


def test_id_hash_is_never_the_empty_marker():
    assert id_hash(0) != 0
    assert id_hash(-1) != 0 and id_hash(-2) != 0
