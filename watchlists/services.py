"""Watchlist writes. The limits live here so every caller (API, admin actions, shell) keeps them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from market.models import Instrument
from watchlists.models import Watchlist, WatchlistDefaults

DEFAULT_NAME = "Default"


class WatchlistError(ValueError):
    """A write the rules refuse (too many lists, a duplicate name); the API answers 400 with the message."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def watchlists_ensure_default(*, user) -> None:
    """Give a user the "Default" list (the catalogue's active instruments) the first time they use watchlists.

    Lazily, so accounts knows nothing of watchlists; once only (a marker row), so a deleted Default stays deleted.
    """
    if WatchlistDefaults.objects.filter(user=user).exists():
        return
    with transaction.atomic():
        _, created = WatchlistDefaults.objects.get_or_create(user=user)
        if not created:
            return
        symbols = list(
            Instrument.objects.filter(active=True)
            .order_by("symbol")
            .values_list("symbol", flat=True)[: settings.WATCHLIST_MAX_SYMBOLS]
        )
        if not Watchlist.objects.filter(user=user, name=DEFAULT_NAME).exists():
            Watchlist.objects.create(user=user, name=DEFAULT_NAME, symbols=symbols)


def watchlist_create(*, user, name: str, symbols: list[str]) -> Watchlist:
    """A new list; at most WATCHLIST_MAX_LISTS per user (counted under a lock on the user, so racing requests
    cannot both pass the check)."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        limit = settings.WATCHLIST_MAX_LISTS
        if Watchlist.objects.filter(user=user).count() >= limit:
            raise WatchlistError("non_field_errors", f"At most {limit} watchlists per user.")
        return _saved(Watchlist(user=user, name=name, symbols=symbols))


def watchlist_update(
    *, watchlist: Watchlist, name: str | None = None, symbols: list[str] | None = None
) -> Watchlist:
    """Rename and/or replace the symbols. The row is locked and re-read and only the given fields are written,
    so two edits from copies loaded at the same time (a rename, a symbols change) both stick. Raises
    Watchlist.DoesNotExist when the list was deleted since the caller loaded it."""
    fields = {key: value for key, value in (("name", name), ("symbols", symbols)) if value is not None}
    try:
        with transaction.atomic():
            current = Watchlist.objects.select_for_update().get(pk=watchlist.pk)
            for key, value in fields.items():
                setattr(current, key, value)
            current.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        raise WatchlistError("name", f"You already have a watchlist named {name!r}.") from exc
    return current


def _saved(watchlist: Watchlist) -> Watchlist:
    try:
        with transaction.atomic():
            watchlist.save()
    except IntegrityError as exc:
        raise WatchlistError("name", f"You already have a watchlist named {watchlist.name!r}.") from exc
    return watchlist
