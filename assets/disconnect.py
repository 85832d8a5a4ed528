"""Disconnecting a destination: an operator's switch that stops its pushes and leaves it as it is."""

import dagster as dg

from orchestration.settings import env_flag

#: destination label -> the setting that disconnects it
DISCONNECT_SETTINGS = {"Mailchimp": "MAILCHIMP_DISCONNECTED", "Customer.io": "CUSTOMERIO_DISCONNECTED"}


def disconnected(context: dg.AssetExecutionContext, destination: str) -> dg.MaterializeResult | None:
    """A skipped materialization when ``destination`` is disconnected, else None (push as usual).

    Nothing is sent, changed or deleted at the destination (the audience, the store and their contacts stay as
    they are) and the sync state is kept: reconnecting sends only what changed meanwhile."""
    setting = DISCONNECT_SETTINGS[destination]
    if not env_flag(setting):
        return None
    message = (
        f"{destination} is disconnected ({setting} is set): skipping the push. Nothing there is changed or "
        f"deleted; unset {setting} to reconnect (only what changed meanwhile is then sent)."
    )
    context.log.warning(message)
    return dg.MaterializeResult(metadata={"skipped": True, "disconnected": True, "skipped_reason": message})
