"""A local SMS Gateway for Android (its REST API and its webhooks) for tests, the demo and the playground."""

from .simulator import SimSms, SmsGatewaySimulator

__all__ = ["SimSms", "SmsGatewaySimulator"]
