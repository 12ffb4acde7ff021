// Package tmpdeps pins dependencies while the packages that use them are written; delete once they import them.
package tmpdeps

import (
	_ "github.com/MicahParks/keyfunc/v3"
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "golang.org/x/time/rate"
	_ "modernc.org/sqlite"
)
