import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.SparkConf;

/**
 * Tasks that each take `ms` milliseconds, so that executors are busy while a test decommissions
 * one: they sleep, or with a third argument `spin` they keep a core busy (what makes a node's
 * CPU really short, the case the guarder acts on).
 */
public class SleepyJob {
  public static void main(String[] args) throws Exception {
    int tasks = Integer.parseInt(args[0]);
    long taskMs = Long.parseLong(args[1]);
    boolean spin = args.length > 2 && args[2].equals("spin");
    JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("sleepy"));
    List<Integer> items = new ArrayList<>();
    for (int i = 0; i < tasks; i++) items.add(i);
    long count = sc.parallelize(items, tasks).map(i -> {
      if (spin) {
        long end = System.nanoTime() + taskMs * 1_000_000L;
        while (System.nanoTime() < end) {
          Thread.onSpinWait();
        }
      } else {
        Thread.sleep(taskMs);
      }
      return i;
    }).count();
    System.out.println("SLEEPY-JOB-DONE count=" + count);
    sc.stop();
  }
}
