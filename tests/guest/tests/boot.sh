# Reaching this point means the kernel booted and ran init.
exit 0
