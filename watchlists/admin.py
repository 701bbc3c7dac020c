from django.contrib import admin

from watchlists.models import Watchlist


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "symbol_count", "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)

    @admin.display(description="Symbols")
    def symbol_count(self, obj) -> int:
        return len(obj.symbols)
