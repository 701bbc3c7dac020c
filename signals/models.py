from __future__ import annotations

from django.db import models

from market.timeframes import STORED_TIMEFRAME_CHOICES


class TradingSignal(models.Model):
    """A BUY/SELL/HOLD call on the close of one candle (the seed's fields), with the factors behind it, its
    entry, stop and target, and the prediction it used, if any."""

    class Type(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"
        HOLD = "HOLD", "Hold"

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
    signal_type = models.CharField(max_length=4, choices=Type.choices)
    strength = models.FloatField(help_text="0-1: the magnitude of the weighted factor score.")
    score = models.FloatField(help_text="Weighted factor score in [-1, 1].")
    entry_price = models.FloatField(help_text="Close of the candle the signal was computed on.")
    price_target = models.FloatField(null=True, blank=True)
    stop_loss = models.FloatField(null=True, blank=True)
    support_level = models.FloatField(null=True, blank=True)
    resistance_level = models.FloatField(null=True, blank=True)
    candle_timestamp = models.DateTimeField(help_text="Open time of the last closed candle used.")
    reasoning = models.TextField()
    factors = models.JSONField(default=list)
    prediction = models.ForeignKey(
        "predictions.Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["symbol", "timeframe", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.signal_type} ({self.strength:.2f})"
