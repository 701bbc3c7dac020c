import factory

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


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationChannel

    user = factory.SubFactory(UserFactory)
    kind = "webhook"
    url = "https://hooks.example.com/services/T000/abcd"
    secret = "a-very-long-shared-secret-1234"
