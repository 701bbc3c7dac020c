from rest_framework import serializers

from market.api.fields import InstantField, QuerySerializer, TimeframeField
from market.timeframes import Timeframe
from tradingdash.inputs import StrictInputSerializer


class SignalListQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=20)


class SignalGenerateInputSerializer(StrictInputSerializer):
    timeframe = TimeframeField(default=Timeframe.D1)


class BacktestQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    start = InstantField(required=False)
    end = InstantField(required=False, end_of_day=True)
    commission_bps = serializers.FloatField(min_value=0, max_value=1000, default=0)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"start": ["start must be before end."]})
        return attrs


class FactorSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    score = serializers.FloatField()
    weight = serializers.FloatField()
    contribution = serializers.FloatField()
    explanation = serializers.CharField()


class SignalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    signal_type = serializers.ChoiceField(choices=["BUY", "SELL", "HOLD"])
    strength = serializers.FloatField()
    score = serializers.FloatField()
    entry_price = serializers.FloatField()
    price_target = serializers.FloatField(allow_null=True)
    stop_loss = serializers.FloatField(allow_null=True)
    support_level = serializers.FloatField(allow_null=True)
    resistance_level = serializers.FloatField(allow_null=True)
    candle_timestamp = serializers.DateTimeField()
    reasoning = serializers.CharField()
    factors = FactorSerializer(many=True)
    prediction_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    source = serializers.CharField(
        allow_null=True,
        help_text="The provider of the bar the signal was made on (yfinance, csv, or `synthetic` for generated "
        "demo data, not market prices); null when that bar is no longer stored.",
    )


class SignalListSerializer(serializers.Serializer):
    results = SignalSerializer(many=True)


class TradeSerializer(serializers.Serializer):
    side = serializers.CharField()
    entry_time = serializers.DateTimeField()
    entry_price = serializers.FloatField()
    exit_time = serializers.DateTimeField()
    exit_price = serializers.FloatField()
    exit_reason = serializers.CharField()
    # `return` is a Python keyword, so the field goes into the class namespace by name.
    vars()["return"] = serializers.FloatField(help_text="Fraction after both commissions (0.0693 = 6.93%).")


class EquityPointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    equity = serializers.FloatField()


class BacktestSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    commission_bps = serializers.FloatField()
    series = serializers.CharField(
        help_text="The candle series replayed: `split-adjusted` (splits and bonus issues applied at read time; "
        "prices before one are comparable with today's), the one live signals use."
    )
    stale = serializers.BooleanField(
        help_text="The provider failed to bring the range up to date: the replay ran on the candles stored."
    )
    trades = TradeSerializer(many=True)
    win_rate = serializers.FloatField(allow_null=True)
    total_return = serializers.FloatField(allow_null=True)
    buy_and_hold_return = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField(allow_null=True)
    sharpe = serializers.FloatField(allow_null=True)
    exposure = serializers.FloatField(allow_null=True)
    periods_per_year = serializers.FloatField()
    equity_curve = EquityPointSerializer(many=True)
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="What the figures cannot carry, in words: too few trades for the win rate and Sharpe ratio to "
        "mean much, no costs charged.",
    )
    factors_replayed = serializers.ListField(child=serializers.CharField())
    factors_not_replayed = serializers.DictField(
        child=serializers.CharField(), help_text="Live-signal factors the backtest does not replay, with why."
    )
