"""What every streaming runner shares: the state kept on the object for callers that do not
thread it through themselves."""
from __future__ import annotations

import torch


class BlockStream:
    """Mixin giving a runner with ``init_state(batch)`` and ``step(block, state) -> (out, state)``
    an object-held state: :meth:`reset` and :meth:`process`.

    ``step`` stays the pure form (state in, state out) that exports and tests use.
    """

    state = None
    _state_batch = 0

    def reset(self, batch: int = 1) -> None:
        """Restore the initial state (silence before the first block) for ``batch`` signals."""
        self.state = self.init_state(batch)
        self._state_batch = batch

    def process(self, block: torch.Tensor) -> torch.Tensor:
        """Step ``block`` ``(batch, 1, samples)`` with the object's state, starting from the
        initial state on the first call or when the batch size changes; returns the output block."""
        if self.state is None or self._state_batch != block.shape[0]:
            self.reset(block.shape[0])
        out, self.state = self.step(block, self.state)
        return out
