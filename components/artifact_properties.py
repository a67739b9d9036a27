"""Custom properties that one component writes on its output artifacts and others read."""

# Why a blessing, push or publication said no. The pushers and the publisher repeat the reason of
# each blessing that stopped them in their own.
REASON_PROPERTY = 'reason'
