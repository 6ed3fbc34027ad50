package rotator

// CrashHook, when set, is called at every named step boundary of a
// rotation. The crash-point tests set it (keyturn reads
// KEYTURN_TEST_CRASH_AT) to kill the daemon exactly there and prove that a
// new daemon resumes. It is nil in normal runs.
var CrashHook func(point string)

func crashPoint(point string) {
	if CrashHook != nil {
		CrashHook(point)
	}
}
