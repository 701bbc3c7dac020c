from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Market"

    def ready(self) -> None:
        from celery.signals import task_failure, task_postrun, task_prerun

        from market.receivers import count_task_failure, task_patience_end, task_patience_start

        task_failure.connect(count_task_failure, dispatch_uid="tradingdash.count_task_failure")
        task_prerun.connect(task_patience_start, dispatch_uid="market.task_patience_start")
        task_postrun.connect(task_patience_end, dispatch_uid="market.task_patience_end")

        from market.receivers import offloaded_answered
        from tradingdash import offload

        offload.on_answered(offloaded_answered)
