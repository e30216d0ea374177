"""Lean per-bar bookkeeping for Backtrader objects whose lines are all preloaded or precomputed.

Backtrader calls len() on every data and indicator several times a bar (LineSeries.__len__ ->
Lines.__len__ -> LineBuffer.__len__) and advances each line of each of them one by one. At 500
stocks that bookkeeping costs more than the strategy. Two tools here:

- ``LeanLinesMixin`` (indicators): ``len()`` straight from the buffer, and in runonce mode, once the
  indicator has been computed for every bar, its lines *follow* its clock's line (see below), so
  Backtrader's per-bar ``advance`` of it is no longer needed and no longer called.
- ``follow(buffer, leader)``: a line whose position (``idx``) and ``len()`` are read from another
  line of the same length, which Backtrader moves as usual. A lean feed's six price lines follow its
  datetime line: advancing the feed moves one line instead of seven.

A follower keeps its own values (``array``); only the position is shared, and every Backtrader
operation that moves a position (forward, backwards, home, advance, rewind) moves all the lines of a
feed (or an indicator and its clock) together, so the leader has already made the same move. They
lean on Backtrader 1.9.78.123 internals (LineBuffer._idx, lencount, mode, extension); they are used only
for plain unbounded buffers (not exactbars / QBuffer), and tests/test_lean.py and
tests/test_arraydata.py compare them with the stock classes bar by bar.
"""

from __future__ import annotations

import array

from backtrader.linebuffer import NAN, LineBuffer


class FollowerLineBuffer(LineBuffer):
    """A LineBuffer whose idx and len are its ``_leader``'s; moving it directly does nothing (the
    leader moves). Made by ``follow``, never constructed."""

    def _leader_idx(self):
        return self._leader._idx

    def _leader_len(self):
        return self._leader.lencount

    def _moved_by_leader(self, value):
        pass  # the leader makes the same move

    _idx = property(_leader_idx, _moved_by_leader)
    idx = property(_leader_idx, _moved_by_leader)
    lencount = property(_leader_len, _moved_by_leader)

    def __len__(self):
        return self._leader.lencount

    def __getitem__(self, ago):
        return self.array[self._leader._idx + ago]


def plain(buffer) -> bool:
    """A stock unbounded LineBuffer (not a QBuffer, not a line operation, not already a follower)."""
    return type(buffer) is LineBuffer and buffer.mode == LineBuffer.UnBounded


def follows(buffer, leader) -> bool:
    """`buffer` already follows `leader` (a second run of the same feed)."""
    return type(buffer) is FollowerLineBuffer and buffer._leader is leader


def follow(buffer: LineBuffer, leader: LineBuffer) -> bool:
    """Make `buffer` follow `leader` when both are plain, equally long and at the same position;
    False (nothing changed) otherwise."""
    if not (plain(buffer) and plain(leader)) or buffer is leader:
        return False
    same = (
        buffer.buflen() == leader.buflen()
        and buffer._idx == leader._idx
        and buffer.lencount == leader.lencount
        and buffer.extension == leader.extension == 0
    )
    if not same:
        return False
    buffer._leader = leader
    buffer.__class__ = FollowerLineBuffer
    return True


class LeanLinesMixin:
    """Mix into a bt.Indicator (or feed) before the Backtrader base class."""

    def _lean_buffers(self):
        buffers = self.lines.lines
        if all(plain(b) for b in buffers):
            return buffers
        return None

    def __len__(self):
        return self.lines.lines[0].lencount

    def forward(self, value=NAN, size=1):
        # runonce's _once forwards each indicator by its clock's whole length: one NaN block per
        # line instead of Backtrader's append per bar; a one-bar step (next mode) is the stock one
        buffers = self._lean_buffers() if size > 1 else None
        if buffers is None:
            return super().forward(value, size)
        block = array.array("d", [value]) * size
        for buf in buffers:
            buf._idx += size
            buf.lencount += size
            buf.array.extend(block)

    def advance(self, size=1):
        # Only runonce calls advance on an indicator (Strategy._oncepost, after once() filled every
        # bar); next mode forwards it. The first call moves the buffers, then they follow the clock.
        buffers = self.__dict__.get("_lean_bufs")
        if buffers is None:
            buffers = self.__dict__["_lean_bufs"] = self._lean_buffers() or False
            if buffers:
                for buf in buffers:
                    buf._idx += size
                    buf.lencount += size
                if self._follow_clock(buffers):
                    self.__dict__["_lean_bufs"] = ()  # followers: the clock moves them
                    self.__dict__["_follows_clock"] = True
                return
        if buffers is False:
            return super().advance(size)
        for buf in buffers:
            buf._idx += size
            buf.lencount += size

    def _follow_clock(self, buffers) -> bool:
        """Follow the clock's position when the indicator's lines line up with its first line."""
        clock = getattr(self, "_clock", None)
        lines = getattr(getattr(clock, "lines", None), "lines", None)
        if not lines:
            return False
        leader = lines[0]
        leader = getattr(leader, "_leader", leader)  # a lean feed's lines follow its datetime line
        if len(clock) != len(self) or not plain(leader):
            return False
        if not all(b.buflen() == leader.buflen() and b._idx == leader._idx for b in buffers):
            return False
        return all([follow(buf, leader) for buf in buffers])


def follows_clock(indicator) -> bool:
    """True once a LeanLinesMixin indicator's lines follow its clock: it is never behind its clock,
    so Strategy._oncepost's per-bar advance check has nothing to do for it."""
    return indicator.__dict__.get("_follows_clock", False)


def moving_indicators(indicators: list) -> list:
    """The indicators Strategy._oncepost must still advance: those that do not follow their clock."""
    return [ind for ind in indicators if not follows_clock(ind)]
