from django.urls import path

from integrations import views, views_exports

app_name = "integrations"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("exports/", views_exports.export_list, name="exports"),
    path("exports/settings/", views_exports.export_settings, name="export_settings"),
    path("exports/<id:pk>/download/", views_exports.export_download, name="export_download"),
    path("time-imports/", views.time_import, name="time_import"),
    path("<str:source>/", views.connection_detail, name="detail"),
    path("<str:source>/connect/", views.connection_connect, name="connect"),
    path("<str:source>/settings/", views.connection_settings, name="settings"),
    path("<str:source>/rotate/", views.connection_rotate, name="rotate"),
    path("<str:source>/mappings/", views.mapping_add, name="mapping_add"),
    path("<str:source>/mappings/<int:mapping_id>/delete/", views.mapping_delete, name="mapping_delete"),
    path("<str:source>/events/<int:event_id>/", views.event_detail, name="event"),
    path("<str:source>/events/<int:event_id>/replay/", views.event_replay, name="event_replay"),
]
