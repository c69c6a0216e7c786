"""IAM for the offline emulator: role sessions through trust policies, every request authorized.

See :mod:`rehearsal.iam.authorizer` for how the rehearsal turns it on.
"""

from rehearsal.iam.authorizer import AccessDeniedError, Authorizer, TrustDeniedError
from rehearsal.iam.report import Denial, UnusedGrantReport

__all__ = ["AccessDeniedError", "Authorizer", "Denial", "TrustDeniedError", "UnusedGrantReport"]
