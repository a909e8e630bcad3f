//go:build !unix

package analyze

import "os"

// Without flock, files in use are not protected from another process's eviction.
func lockShared(*os.File) error      { return nil }
func tryLockExclusive(*os.File) bool { return true }
func allocated(fi os.FileInfo) int64 { return fi.Size() }
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}
