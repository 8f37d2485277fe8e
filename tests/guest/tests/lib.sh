# Sourced by the guest's init and by every guest test script.

# cmdline_get KEY: value of KEY=VALUE on the kernel command line; a bare KEY
# gives "1"; returns 1 when KEY is absent.
cmdline_get() {
    for w in $(cat /proc/cmdline); do
        case "$w" in
        "$1="*) echo "${w#*=}"; return 0 ;;
        "$1") echo 1; return 0 ;;
        esac
    done
    return 1
}

# fail MSG: explain why a test failed, and fail it.
fail() {
    echo "guest: $TEST: $*"
    exit 1
}
