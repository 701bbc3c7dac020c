from __future__ import annotations

from django.conf import settings
from django.db import models


class Watchlist(models.Model):
    """A user's named list of symbols (Yahoo-style, e.g. RELIANCE.NS), in the order the user gave them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=100)
    symbols = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="watchlists_name_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"


class WatchlistDefaults(models.Model):
    """Marks that a user was given the "Default" list once, so deleting it never brings it back."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "watchlist defaults"

    def __str__(self) -> str:
        return f"defaults of {self.user_id}"
