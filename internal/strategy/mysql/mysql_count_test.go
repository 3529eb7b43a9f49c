package mysql

import (
	"maps"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

func TestMySQLCount(t *testing.T) {
	dump := "-- MariaDB dump\n" +
		"USE `shop`;\n" +
		"CREATE TABLE `items` (\n  `id` int NOT NULL\n);\n" +
		"CREATE TABLE `empty` (\n  `id` int\n);\n" +
		"INSERT INTO `items` VALUES (1,'a (b); c'),(2,'it\\'s'),(3,'x''y'),\n(4,0x28293B);\n" +
		"INSERT INTO `items` VALUES (5,NULL);\n" +
		"INSERT INTO `items` VALUES\n(6,'x'),\n(7,'y\\n');\n" +
		"USE `we``ird`;\n" +
		"CREATE TABLE `t` (`a` int);\n" +
		"INSERT INTO `t` VALUES (1),(2);\n" +
		"/*!50001 CREATE TABLE `v` (\n  `a` int\n) */;\n"
	got := strategytest.Feed(t, (&Strategy{}).NewCount(), []byte(dump))
	want := map[string]int64{"shop.items": 7, "shop.empty": 0, "we`ird.t": 2}
	if !maps.Equal(got.Tables, want) {
		t.Fatalf("counted %v, want %v", got.Tables, want)
	}
}
