"""Legacy SOAP exchange (``soap``, 前置机): destination for approval records over zeep, reconciled by ``query(sn)``."""

from adapters.soap.adapter import SoapAdapter

__all__ = ["SoapAdapter"]
