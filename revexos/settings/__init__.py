"""Default settings (development and tests). Production: ``revexos.settings.production``."""
from .base import *  # noqa: F401,F403
