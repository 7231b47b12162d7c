package nodeconfig

import (
	"fmt"
	"net"
	"strconv"
)

func splitHostPort(a string) (string, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return "", fmt.Errorf("%q: want host:port with a port in 1-65535", a)
	}
	return host, nil
}
