"""A clock for code that waits: time moves only when something sleeps on it."""


class FakeClock:
    """Monotonic seconds that move only when something sleeps on them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
