"""The server's window as a state machine (``pacing.window``): every
transition, table by table, against outcomes worked out by hand.

The scene: the server's window holds 20 (``PEAK``); it is now 10.0 s.  A
shared quota present means this process may use the whole window (``full``
20); away, it paces at half (``full`` 10).  The window we count renewed at
10.0 after 40 requests had gone out (``LAPSED``: no answer has said yet when
the new one ends), or, ``OPEN``, renewed at 9.5 and ends at 10.5 with 5 left.
An answer is to a request sent before that renewal (the 35th) or after it
(the 45th); its reset has passed (it reads -0.05 s), or not, or it says none.  These answers
are read promptly (their requests went out 50 ms ago); answers read late
have a table of their own."""

import math

import pytest

from rolebatch.pacing.window import LAPSED, OPEN, UNKNOWN, Answer, Window

PEAK = 20.0
NOW = 10.0
PROMPT = NOW - 0.05  # when a promptly read answer's request went out
FULL = {"present": 20.0, "away": 10.0}


def _window(state: str, shared: str) -> Window:
    if state == UNKNOWN:
        return Window()
    if state == OPEN:
        return Window(left=5.0, reset_at=10.5, renewed_at=9.5, renewed_count=40)
    # Renewed at 10.0 with the full window; three sent since.
    return Window(left=FULL[shared] - 3, renewed_at=10.0, renewed_count=40)


# An answer before the renewal reports the old window spent (0 left, 8 sent
# after it); one after reports 18 left with 2 sent after it.  "Not passed"
# before the renewal is the old window's reset a hair ahead (the server's
# clock and ours differ by that much); after it, a reset 0.9 s on.
ANSWERS = {
    ("before", "passed"): Answer(remaining=0, reset=-0.05, count=35, after=8, sent=PROMPT),
    ("before", "not passed"): Answer(remaining=0, reset=0.01, count=35, after=8, sent=PROMPT),
    ("after", "passed"): Answer(remaining=18, reset=-0.05, count=45, after=2, sent=PROMPT),
    ("after", "not passed"): Answer(remaining=18, reset=0.9, count=45, after=2, sent=PROMPT),
    # No reset header at all (some servers send remaining alone).
    ("before", "none"): Answer(remaining=0, reset=None, count=35, after=8, sent=PROMPT),
    ("after", "none"): Answer(remaining=18, reset=None, count=45, after=2, sent=PROMPT),
}

UNCHANGED = None
# (state, sent, reset, shared) -> (left, reset_at) after hearing, or UNCHANGED.
HEAR = {
    # The first word from the server is taken whatever it says, less what
    # went out after it.
    (UNKNOWN, "before", "passed", "present"): (-8.0, 9.95),
    (UNKNOWN, "before", "passed", "away"): (-8.0, 9.95),
    (UNKNOWN, "before", "not passed", "present"): (-8.0, 10.01),
    (UNKNOWN, "before", "not passed", "away"): (-8.0, 10.01),
    (UNKNOWN, "after", "passed", "present"): (16.0, 9.95),
    (UNKNOWN, "after", "passed", "away"): (16.0, 9.95),
    (UNKNOWN, "after", "not passed", "present"): (16.0, 10.9),
    (UNKNOWN, "after", "not passed", "away"): (16.0, 10.9),
    # An open window ending at 10.5: a reset well before it is about a window
    # that has passed, whoever sent it.
    (OPEN, "before", "passed", "present"): UNCHANGED,
    (OPEN, "before", "passed", "away"): UNCHANGED,
    (OPEN, "before", "not passed", "present"): UNCHANGED,
    (OPEN, "before", "not passed", "away"): UNCHANGED,
    (OPEN, "after", "passed", "present"): UNCHANGED,
    (OPEN, "after", "passed", "away"): UNCHANGED,
    # A reset well after 10.5: a window opened that we had not seen renew.  It
    # starts full (our share of it while the quota is away); the server has
    # used 2 of it, we nothing we know of: its count wins, within the share.
    (OPEN, "after", "not passed", "present"): (16.0, 10.9),
    (OPEN, "after", "not passed", "away"): (10.0, 10.9),
    # Just renewed: news of the window before is no news.
    (LAPSED, "before", "passed", "present"): UNCHANGED,
    (LAPSED, "before", "passed", "away"): UNCHANGED,
    (LAPSED, "before", "not passed", "present"): UNCHANGED,
    (LAPSED, "before", "not passed", "away"): UNCHANGED,
    # An answer from the renewed window: the server has counted 2 of our 3,
    # so our count stands, and its reset is the window's end; a reset passed
    # already says the window is over (it renews at the next tick).
    (LAPSED, "after", "passed", "present"): (17.0, 9.95),
    (LAPSED, "after", "passed", "away"): (7.0, 9.95),
    (LAPSED, "after", "not passed", "present"): (17.0, 10.9),
    (LAPSED, "after", "not passed", "away"): (7.0, 10.9),
    # No reset said.  The first word is taken, its window's end unknown.
    (UNKNOWN, "before", "none", "present"): (-8.0, math.inf),
    (UNKNOWN, "before", "none", "away"): (-8.0, math.inf),
    (UNKNOWN, "after", "none", "present"): (16.0, math.inf),
    (UNKNOWN, "after", "none", "away"): (16.0, math.inf),
    # Sent before our renewal, nothing to place it: the window before's.
    (OPEN, "before", "none", "present"): UNCHANGED,
    (OPEN, "before", "none", "away"): UNCHANGED,
    (LAPSED, "before", "none", "present"): UNCHANGED,
    (LAPSED, "before", "none", "away"): UNCHANGED,
    # Since: about ours.  The known end (10.5) stays, never a window renewed
    # unseen; the server's 2 used is within what we sent, so our count stands.
    (OPEN, "after", "none", "present"): (5.0, 10.5),
    (OPEN, "after", "none", "away"): (5.0, 10.5),
    (LAPSED, "after", "none", "present"): (17.0, math.inf),
    (LAPSED, "after", "none", "away"): (7.0, math.inf),
}


def test_the_table_covers_every_pair():
    grid = {
        (state, sent, reset, shared)
        for state in (UNKNOWN, OPEN, LAPSED)
        for sent in ("before", "after")
        for reset in ("passed", "not passed", "none")
        for shared in ("present", "away")
    }
    assert set(HEAR) == grid


@pytest.mark.parametrize(("case", "expected"), HEAR.items(), ids=["/".join(c) for c in HEAR])
def test_hear(case, expected):
    state, sent, reset, shared = case
    window = _window(state, shared)
    assert window.state == state
    heard = window.hear(ANSWERS[sent, reset], NOW, PEAK, FULL[shared])
    if expected is UNCHANGED:
        assert heard == window
        return
    left, reset_at = expected
    assert heard.left == pytest.approx(left)
    assert heard.reset_at == pytest.approx(reset_at)
    assert heard.state == (OPEN if reset_at < math.inf else LAPSED)
    # What the window remembers of its renewal is the renewal's business alone.
    assert (heard.renewed_at, heard.renewed_count) == (window.renewed_at, window.renewed_count)


@pytest.mark.parametrize("shared", ["present", "away"])
def test_an_answer_about_the_open_windows_own_end(shared):
    # Ends 10.5 as we count it; 18 left by the server's count when we have
    # sent 15 (present) or 5 (away) into it: ours stands.  3 left says
    # another client took 17: the server's count wins, less the 2 sent since.
    window, full = _window(OPEN, shared), FULL[shared]
    same = Answer(remaining=18, reset=0.5, count=45, after=2, sent=PROMPT)
    assert window.hear(same, NOW, PEAK, full) == window
    spent = Answer(remaining=3, reset=0.5, count=45, after=2, sent=PROMPT)
    assert window.hear(spent, NOW, PEAK, full).left == pytest.approx(1.0)


def test_another_client_on_the_quota_within_our_share():
    # Renewed window, 3 of ours sent; the server has used 8.  Present, the
    # other spending is news: 12 left less our 2 since.  Away, our share (7
    # left of 10) is already less than that.
    spent = Answer(remaining=12, reset=0.9, count=45, after=2, sent=PROMPT)
    assert _window(LAPSED, "present").hear(spent, NOW, PEAK, 20.0).left == pytest.approx(10.0)
    assert _window(LAPSED, "away").hear(spent, NOW, PEAK, 10.0).left == pytest.approx(7.0)


# Answers read late (a loaded machine's event loop, a slow proxy): the server
# spoke somewhere between the request's going out and our reading, so its
# reset says when its window ends only within those bounds.  The scene is the
# open window's (renewed at 9.5, ends at 10.5, 5 left) or the lapsed one's
# (renewed at 10.5 after 40 requests, 3 sent since); each answer's request
# went out early in the window it speaks of.
# (state, answer, now) -> (left, reset_at) after hearing, or UNCHANGED.
READ_LATE = {
    # Sent at 9.52 into the open window, 19 left then and 0.98 s to go: read
    # at 10.3, it would say a window ending at 11.28, one we had not seen
    # open.  It may end at 10.5: ours.  Nothing changes.
    "a late answer does not open a window": (
        OPEN,
        Answer(remaining=19, reset=0.98, count=45, after=8, sent=9.52),
        10.3,
        UNCHANGED,
    ),
    # The same answer read after we counted the window renewed at 10.5: it may
    # speak of the window before, and does.
    "a late answer is no news after a renewal": (
        LAPSED,
        Answer(remaining=19, reset=0.98, count=35, after=8, sent=9.52),
        10.9,
        UNCHANGED,
    ),
    # Ours, read 0.6 s late: its window ends between 10.5 and 11.1; ours ends
    # at 10.5 already.  The count it brings is still news (another client
    # spent 10 more than we sent): 10 left then, 2 sent since.
    "a late answer of ours moves its end no later": (
        OPEN,
        Answer(remaining=3, reset=0.9, count=45, after=2, sent=9.6),
        10.2,
        (1.0, 10.5),
    ),
    # Read at once, an answer places the end within its round trip: it moves
    # ours later when it says so.
    "a prompt answer of ours still moves its end": (
        OPEN,
        Answer(remaining=18, reset=0.36, count=45, after=2, sent=10.15),
        10.2,
        (5.0, 10.56),
    ),
}


@pytest.mark.parametrize(
    ("state", "answer", "now", "expected"), READ_LATE.values(), ids=list(READ_LATE)
)
def test_answers_read_late(state, answer, now, expected):
    window = _window(state, "present")
    if state == LAPSED:  # renewed at 10.5, as the late answers' windows end
        window = Window(left=17.0, renewed_at=10.5, renewed_count=40)
    heard = window.hear(answer, now, PEAK, FULL["present"])
    if expected is UNCHANGED:
        assert heard == window
        return
    left, reset_at = expected
    assert heard.left == pytest.approx(left)
    assert heard.reset_at == pytest.approx(reset_at)


def test_an_answers_window_ends_between_its_sending_and_its_reading():
    answer = Answer(remaining=3, reset=0.9, count=45, after=2, sent=9.6)
    assert answer.ends(10.2) == pytest.approx((10.5, 11.1))
    assert Answer(remaining=3, reset=None, count=1, after=0, sent=9.6).ends(10.2) == (
        math.inf,
        math.inf,
    )


# (state, reset) -> does renew(now) open a new window?
RENEW = {
    (UNKNOWN, "passed"): False,
    (UNKNOWN, "not passed"): False,
    (OPEN, "passed"): True,
    (OPEN, "not passed"): False,
    (LAPSED, "passed"): False,  # no reset known: nothing to pass
    (LAPSED, "not passed"): False,
}


@pytest.mark.parametrize(("case", "renews"), RENEW.items(), ids=["/".join(c) for c in RENEW])
@pytest.mark.parametrize("shared", ["present", "away"])
def test_renew(case, renews, shared):
    state, reset = case
    window = _window(state, shared)
    now = 10.6 if reset == "passed" else 10.4  # the open window ends at 10.5
    renewed = window.renew(now, FULL[shared], count=50)
    if not renews:
        assert renewed == window
        return
    assert renewed == Window(left=FULL[shared], renewed_at=10.5, renewed_count=50)
    assert renewed.state == LAPSED
    # Answers to the 50 sent by then speak of the window before.
    old = Answer(remaining=0, reset=0.0, count=50, after=0, sent=now - 0.05)
    assert renewed.hear(old, now, PEAK, FULL[shared]) == renewed


def test_spend():
    assert Window().spend(1) == Window()
    assert _window(OPEN, "present").spend(2).left == 3
    assert _window(LAPSED, "away").spend(8).left == -1


WAIT = [
    # window, cost, answers pending -> seconds
    (Window(), 1, True, 0.0),
    (Window(left=5, reset_at=10.5), 1, True, 0.0),
    (Window(left=0.5, reset_at=10.5), 1, True, 0.5),
    (Window(left=0.5, reset_at=10.5), 1, False, 0.5),
    (Window(left=0), 1, True, math.inf),  # the next answer will say when
    (Window(left=0), 1, False, 0.0),  # none to come: go, and let the server say
    (Window(left=5, reset_at=10.5), 40, True, 0.5),  # above a window: a whole one
    (Window(left=20, reset_at=10.5), 40, True, 0.0),
]


@pytest.mark.parametrize(("window", "cost", "pending", "seconds"), WAIT)
def test_wait_asks_and_changes_nothing(window, cost, pending, seconds):
    before = Window(window.left, window.reset_at, window.renewed_at, window.renewed_count)
    assert window.wait(cost, PEAK, NOW, pending) == seconds
    assert window == before
