//go:build !unix

package ipfilter

import "os"

// inode is not available here: size and mtime identify a version.
func inode(os.FileInfo) uint64 { return 0 }
