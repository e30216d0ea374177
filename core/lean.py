"""Lean per-bar bookkeeping for Backtrader objects whose lines are all preloaded or precomputed.

Backtrader calls len() on every data and indicator several times a bar (LineSeries.__len__ ->
Lines.__len__ -> LineBuffer.__len__) and advances each through two proxy layers. At 500 stocks
that bookkeeping costs more than the strategy. These overrides go straight to the line buffers;
they keep the stock behaviour for anything but plain unbounded buffers (exactbars / QBuffer).
They lean on Backtrader 1.9.78.123 internals (LineBuffer._idx, lencount, mode); the pinned version
and the tests that compare them with the stock classes keep them honest.
"""

from __future__ import annotations

from backtrader.linebuffer import LineBuffer


class LeanLinesMixin:
    """Mix into a bt.Indicator (or feed) before the Backtrader base class."""

    def _lean_buffers(self):
        buffers = self.lines.lines
        if all(type(b) is LineBuffer and b.mode == LineBuffer.UnBounded for b in buffers):
            return buffers
        return None

    def __len__(self):
        return self.lines.lines[0].lencount

    def advance(self, size=1):
        buffers = self.__dict__.get("_lean_bufs")
        if buffers is None:
            buffers = self.__dict__["_lean_bufs"] = self._lean_buffers() or False
        if buffers is False:
            return super().advance(size)
        for buf in buffers:
            buf._idx += size
            buf.lencount += size
