"""Default settings (development and tests). Production: ``revexos.settings.production``."""

from .base import *  # noqa: F403
