"""Buy on the first bar and hold: the benchmark every active strategy has to beat."""

import numpy as np
import pandas as pd

from tradenn.backtest import Strategy


class BuyAndHold(Strategy):
    """Fully invested from the first bar to the last (vectorized: target exposure 1 throughout).

    Its result differs from the ``Buy & Hold Return`` statistic only by costs and whole-unit
    rounding, which makes it a check on the engine as well as a benchmark."""

    exposure = 1.0

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        if not 0 < params["exposure"] <= 1:
            raise ValueError(f"exposure must be in (0, 1], got {params['exposure']}")

    def positions(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(np.full(len(data), float(self.exposure)), index=data.index)
