"""Public URLs on the tenant's host: the customer's pay page and the Stripe webhook."""

from django.urls import path

from receivables import views_pay

app_name = "pay"

urlpatterns = [
    path("pay/<str:token>/", views_pay.pay_page, name="page"),
    path("pay/<str:token>/pdf/", views_pay.pay_pdf, name="pdf"),
    path("pay/<str:token>/confirm/", views_pay.pay_confirm, name="confirm"),
    path("pay/<str:token>/status/", views_pay.pay_status, name="status"),
    path("webhooks/stripe/", views_pay.stripe_webhook, name="stripe_webhook"),
]
