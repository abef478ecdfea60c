package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gatehouse-proxy/gatehouse/internal/passhash"
	"golang.org/x/sys/unix"
)

// cmdHashPassword prints a hash for basic_auth: the password is read from
// the terminal without echo (asked twice), or as the first line of stdin
// when stdin is not a terminal, so that it never appears in argv, shell
// history or `ps`.
func cmdHashPassword(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algo := fs.String("algorithm", "bcrypt", "bcrypt | argon2id")
	cost := fs.Int("cost", 10, "bcrypt cost (4-31); each step doubles the time of a login")
	if fs.Parse(args) != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gatehouse hash-password: the password is read from stdin or the terminal, never from the command line")
		return 2
	}
	if *algo != "bcrypt" && *algo != "argon2id" {
		fmt.Fprintf(stderr, "gatehouse hash-password: --algorithm must be bcrypt or argon2id, not %q\n", *algo)
		return 2
	}
	var pw []byte
	var err error
	if isTerminal(stdin) {
		pw, err = promptTwice(stdin, stderr)
	} else {
		pw, err = firstLine(stdin)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse hash-password:", err)
		return 1
	}
	if len(pw) == 0 {
		fmt.Fprintln(stderr, "gatehouse hash-password: empty password")
		return 1
	}
	var h string
	if *algo == "bcrypt" {
		h, err = passhash.Bcrypt(pw, *cost)
	} else {
		h, err = passhash.Argon2id(pw)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}

// firstLine reads stdin up to the first newline (a trailing CR too is
// dropped), so that `echo secret | gatehouse hash-password` hashes "secret".
func firstLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, err
	}
	if err == io.EOF && len(line) == 4096 {
		return nil, errors.New("password over 4 KiB")
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// promptTwice asks for the password twice with echo off.
func promptTwice(tty *os.File, stderr io.Writer) ([]byte, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	br := bufio.NewReader(tty)
	read := func(prompt string) ([]byte, error) {
		fmt.Fprint(stderr, prompt)
		line, err := br.ReadBytes('\n')
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
	a, err := read("Password: ")
	if err != nil {
		return nil, err
	}
	b, err := read("Again: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a, b) {
		return nil, errors.New("the passwords differ")
	}
	return a, nil
}
