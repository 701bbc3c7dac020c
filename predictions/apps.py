from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"
    verbose_name = "Predictions"

    def ready(self) -> None:
        from predictions.receivers import (
            flag_models_on_candles_deleted,
            flag_models_on_candles_stored,
            flag_models_on_corporate_actions,
            rescore_on_candles_stored,
            rescore_on_corporate_actions,
        )
        from tradingdash.events import CandlesDeleted, CandlesStored, CorporateActionsChanged, subscribe

        subscribe(CandlesStored, rescore_on_candles_stored)
        subscribe(CandlesStored, flag_models_on_candles_stored)
        subscribe(CandlesDeleted, flag_models_on_candles_deleted)
        subscribe(CorporateActionsChanged, rescore_on_corporate_actions)
        subscribe(CorporateActionsChanged, flag_models_on_corporate_actions)

        from celery.signals import task_postrun, task_revoked

        from predictions.receivers import announce_task_finished, announce_task_revoked

        task_postrun.connect(announce_task_finished, dispatch_uid="predictions.announce_task_finished")
        task_revoked.connect(announce_task_revoked, dispatch_uid="predictions.announce_task_revoked")
