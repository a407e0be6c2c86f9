"""Custom actions for kefu, run by the Rasa SDK action server."""

from kefu.stack.logs import install_masking

# rasa_sdk configures logging before it imports this package: mask what its handlers print.
install_masking()
