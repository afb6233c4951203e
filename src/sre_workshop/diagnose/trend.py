"""Memory leaks by trend, not threshold: a least-squares line through a sliding window of readings.

A series leaks when it grows steadily: the slope is positive beyond noise (the fit explains most of the
variance, and the rise over the window is more than a minimum), not when it merely sits high. A flat or
noisy-but-stable series is not a leak.
"""

from __future__ import annotations

from dataclasses import dataclass

# Below this growth over the window, a rise is noise (allocator churn, a cache warming).
MIN_RISE_MB = 2.0
# The fit must explain this share of the variance: steady growth, not a jump and back.
MIN_R2 = 0.8


@dataclass(frozen=True)
class Trend:
    """The fitted growth of one series."""

    slope_mb_per_min: float
    rise_mb: float
    r2: float
    last_mb: float
    points: int

    @property
    def leaking(self) -> bool:
        """True when the series grows steadily."""
        return self.points >= 3 and self.rise_mb >= MIN_RISE_MB and self.r2 >= MIN_R2 and self.slope_mb_per_min > 0

    def minutes_to(self, limit_mb: float) -> float | None:
        """Minutes until the series reaches `limit_mb` at this rate (None if it does not grow)."""
        if self.slope_mb_per_min <= 0 or limit_mb <= self.last_mb:
            return None
        return (limit_mb - self.last_mb) / self.slope_mb_per_min


def fit(points: list[tuple[float, float]]) -> Trend:
    """Fit a line through (epoch seconds, MB) readings."""
    n = len(points)
    if n < 2:
        last = points[-1][1] if points else 0.0
        return Trend(0.0, 0.0, 0.0, last, n)
    xs = [p[0] - points[0][0] for p in points]
    ys = [p[1] for p in points]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return Trend(slope * 60, slope * (xs[-1] - xs[0]), r2, ys[-1], n)
