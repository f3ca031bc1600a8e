// Package deploytest holds the tests of the deployment guide: the packed server run
// on three hosts made of Linux network namespaces, exactly as an operator follows
// the guide, and the start-up failures an operator can cause (each must end the
// process with a one-line reason that names the log directory).
//
// The package has no code of its own; everything is in its tests, which build and
// run the real binaries.
package deploytest
