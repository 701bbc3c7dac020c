import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from alerts.models import Alert, NotificationChannel


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    user = factory.SubFactory(UserFactory)
    symbol = "TCS.NS"
    kind = "price_above"
    threshold = 100.0
    channels = factory.LazyFunction(lambda: ["stream"])
    cooldown_minutes = 30
    threshold_set_at = factory.LazyFunction(timezone.now)
    watching_since = factory.SelfAttribute("threshold_set_at")  # as alert_create: both when it is made


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationChannel

    user = factory.SubFactory(UserFactory)
    kind = "webhook"
    url = "https://hooks.example.com/services/T000/abcd"
    secret = "a-very-long-shared-secret-1234"
