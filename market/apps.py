from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Market"

    def ready(self) -> None:
        from celery.signals import task_failure

        from market.receivers import count_task_failure

        task_failure.connect(count_task_failure, dispatch_uid="tradingdash.count_task_failure")
